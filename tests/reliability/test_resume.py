"""What a rerun trusts: an entry counts as done only if its file opens, is complete, carries
this run's config hash and was made from the source video as it is now; everything else is
extracted again, and a file is adopted after a lost manifest only on the same terms."""

import os
import shutil

import h5py
import pytest

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.runner import run_extraction
from multimodal_har.data.store import FeatureStore
from tests.conftest import VIDEOS


def _one_video(tmp_path, name="apply_eye_makeup_with_audio.avi", as_name="clip"):
    root = tmp_path / "v"
    root.mkdir(exist_ok=True)
    dst = root / (as_name + os.path.splitext(name)[1])
    shutil.copy(VIDEOS / name, dst)  # a copy: the tests replace it in place
    return root, dst


def _run(ex, root, store):
    return run_extraction(ex, videos_root=root, store=store, workers=1, progress=False)


def _counts(s):
    return s.done, s.skipped, s.adopted, len(s.failed)


@pytest.fixture
def rgb():
    return build_extractor("rgb", short_side=32, max_frames=8)


def test_a_file_written_by_another_config_is_not_taken_as_done(tmp_path, rgb):
    """Two runs with different configs on one store: the last rename and the last manifest
    write can come from different runs, leaving the manifest's hash over the other's file."""
    root, _ = _one_video(tmp_path)
    store = FeatureStore(tmp_path / "s", create=True)
    _run(rgb, root, store)
    other = FeatureStore(tmp_path / "other", create=True)
    _run(build_extractor("rgb", short_side=48, max_frames=8), root, other)
    shutil.copy(other.path("clip", "rgb"), store.path("clip", "rgb"))  # the other run's rename landed last
    s = _run(rgb, root, store)
    assert _counts(s) == (1, 0, 0, 0)
    with store.open("clip", "rgb") as f:
        assert f.attrs["config_hash"] == rgb.config_hash and f.attrs["height"] == 32


def test_a_truncated_file_recorded_ok_is_redone(tmp_path, rgb):
    root, _ = _one_video(tmp_path)
    store = FeatureStore(tmp_path / "s", create=True)
    _run(rgb, root, store)
    p = store.path("clip", "rgb")
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    s = _run(rgb, root, store)
    assert _counts(s) == (1, 0, 0, 0)
    with store.open("clip", "rgb") as f:
        assert f["frames"].shape[0] == f.attrs["num_frames"] == 8


def test_a_source_replaced_in_place_is_extracted_again(tmp_path, rgb):
    root, src = _one_video(tmp_path, "tai_chi.mp4")
    store = FeatureStore(tmp_path / "s", create=True)
    audio = build_extractor("audio")
    _run(rgb, root, store)
    assert _run(audio, root, store).missing  # tai chi has no audio track
    shutil.copy(VIDEOS / "chaplin_with_audio.mp4", src)  # same name, other content
    assert _counts(_run(rgb, root, store)) == (1, 0, 0, 0)
    with store.open("clip", "rgb") as f:
        assert (f.attrs["width"], f.attrs["height"]) == (57, 32)  # 640x360 now, not 340x256
    s = _run(audio, root, store)
    assert _counts(s) == (1, 0, 0, 0) and not s.missing
    # and once redone, nothing is redone
    assert _counts(_run(rgb, root, store)) == (0, 1, 0, 0)
    assert _counts(_run(audio, root, store)) == (0, 1, 0, 0)


def _corrupt_last_chunk(path, dataset):
    with h5py.File(path, "r") as f:
        ds = f[dataset]
        chunk = ds.id.get_chunk_info(ds.id.get_num_chunks() - 1)
    with open(path, "r+b") as fh:
        fh.seek(chunk.byte_offset)
        fh.write(bytes(chunk.size))


def test_adopting_after_a_lost_manifest_rejects_unreadable_files(tmp_path):
    root, _ = _one_video(tmp_path)
    store = FeatureStore(tmp_path / "s", create=True)
    audio = build_extractor("audio")
    _run(audio, root, store)
    store.manifest.conn.execute("DELETE FROM entries")  # the manifest lost its record
    store.manifest.commit()
    _corrupt_last_chunk(store.path("clip", "audio"), "logmel")  # opens, attributes intact
    with pytest.raises(OSError):
        store.read("clip", "audio")
    s = _run(audio, root, store)
    assert _counts(s) == (1, 0, 0, 0)
    arrays, _ = store.read("clip", "audio")
    assert arrays["logmel"].shape[0] == arrays["timestamps"].shape[0] > 600
    # an intact file of a lost manifest is still adopted, not recomputed
    store.manifest.conn.execute("DELETE FROM entries")
    store.manifest.commit()
    assert _counts(_run(audio, root, store)) == (0, 0, 1, 0)
