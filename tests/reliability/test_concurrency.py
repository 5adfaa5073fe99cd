"""Several writers on one store: an extraction holds the manifest's write lock only while it
records a result, so another writer (a second ``torchrun`` rank, ``mhar store add``) is never
kept waiting for a whole video."""

import os
import sqlite3

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.rgb import RGBExtractor
from multimodal_har.extractors.runner import run_extraction
from multimodal_har.data.store import FeatureStore
from tests.conftest import VIDEOS


class OtherWriterDuringEachVideo(RGBExtractor):
    """A real rgb extraction that, at the start of every video, writes to the same manifest
    from a second connection with a 1 s lock timeout, as another rank recording its result."""

    manifest_path = None
    errors: list

    def extract(self, path, out, *, info, threads=0):
        conn = sqlite3.connect(self.manifest_path, timeout=1.0)
        try:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", ("other_rank", str(path)))
            conn.commit()
        except sqlite3.OperationalError as e:
            self.errors.append(f"{path.name}: {e}")
        finally:
            conn.close()
        return super().extract(path, out, info=info, threads=threads)


def test_the_manifest_lock_is_not_held_while_a_video_is_extracted(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    for name in ["tai_chi.mp4", "clean_and_jerk.mp4", "cleaning_pool.mp4", "arm_wrestling.mp4"]:
        os.symlink(VIDEOS / name, root / name)
    store = FeatureStore(tmp_path / "s", create=True)
    ex = OtherWriterDuringEachVideo(config=build_extractor("rgb", short_side=32, max_frames=5).config)
    ex.manifest_path, ex.errors = store.root / "manifest.sqlite", []
    s = run_extraction(ex, videos_root=root, store=store, workers=1, progress=False)
    assert s.done == 4
    assert ex.errors == []  # before: "database is locked" while the previous result sat uncommitted
