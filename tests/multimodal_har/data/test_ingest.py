import pytest

from multimodal_har.data.ingest import VideoRecord, read_annotations, scan_folder, scan_videos


def _touch(root, *paths):
    for p in paths:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).write_bytes(b"x")


def test_class_folder_layout(tmp_path):
    _touch(tmp_path, "walk/a.mp4", "walk/sub/b.MKV", "run/c.webm", "run/notes.txt", ".hidden/d.mp4",
           "loose.avi")
    recs = scan_folder(tmp_path)
    assert recs == [
        VideoRecord(id="loose", path="loose.avi", label=None),
        VideoRecord(id="run/c", path="run/c.webm", label="run"),
        VideoRecord(id="walk/a", path="walk/a.mp4", label="walk"),
        VideoRecord(id="walk/sub/b", path="walk/sub/b.MKV", label="walk"),
    ]


def test_ids_that_collide_are_an_error(tmp_path):
    _touch(tmp_path, "walk/a.mp4", "walk/a.avi")
    with pytest.raises(ValueError, match="same id 'walk/a'"):
        scan_folder(tmp_path)


def test_empty_folder_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="no videos"):
        scan_videos(tmp_path)
    with pytest.raises(NotADirectoryError):
        scan_videos(tmp_path / "nope")


def test_annotation_csv(tmp_path):
    csv = tmp_path / "ann.csv"
    csv.write_text("path,label,split\nclips/1.mp4,jump,train\nclips/2.mp4,sit,test\n# comment\n\nclips/3.mp4,,\n")
    recs = read_annotations(tmp_path, csv)
    assert recs == [
        VideoRecord(id="clips/1", path="clips/1.mp4", label="jump", split="train"),
        VideoRecord(id="clips/2", path="clips/2.mp4", label="sit", split="test"),
        VideoRecord(id="clips/3", path="clips/3.mp4", label=None, split=None),
    ]
    csv.write_text("a.mp4,wave\nb.mp4,clap\n")  # no header, no split
    assert [(r.id, r.label, r.split) for r in read_annotations(tmp_path, csv)] == [("a", "wave", None), ("b", "clap", None)]
    csv.write_text(f"{tmp_path / 'abs.mp4'},wave\n")  # absolute path inside the root
    assert read_annotations(tmp_path, csv)[0].path == "abs.mp4"


@pytest.mark.parametrize("text,match", [
    ("path,label\na.mp4\n", r"ann.csv:2: expected 'path,label\[,split\]'"),
    ("path,klass\na.mp4,x\n", "header must be"),
    ("a.mp4,x\na.mp4,y\n", "listed twice"),
    ("/elsewhere/a.mp4,x\n", "not inside the videos root"),
    ("path,label\n", "lists no videos"),
])
def test_bad_annotation_csv(tmp_path, text, match):
    csv = tmp_path / "ann.csv"
    csv.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_annotations(tmp_path, csv)
