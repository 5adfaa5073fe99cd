"""Data layer shared by every modality: ingestion, decoding, the feature store, the manifest."""

from .ingest import VideoRecord, read_annotations, scan_folder, scan_videos
from .store import FeatureStore

__all__ = ["FeatureStore", "VideoRecord", "read_annotations", "scan_folder", "scan_videos"]
