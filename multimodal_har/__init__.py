"""multimodal-har: multimodal human action recognition.

Three packages, three rooms:

* ``extractors``: raw video -> modality arrays in a feature store (rgb, audio, ...).
* ``multimodal_har``: data (ingestion, store, manifest), encoders, models, training, CLI.
* ``fusion``: the ways modalities are combined.

Importing this package is cheap: torch, PyAV, librosa and h5py are imported by the
modules that need them, and optional backends (ptlflow, mmpose, mediapipe) only when used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
