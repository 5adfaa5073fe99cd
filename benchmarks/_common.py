"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

from pathlib import Path

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared/data/videos"


def replicate_videos(src: str | Path, dst: Path, replicas: int) -> Path:
    """A folder of ``replicas`` copies (symlinks) of every video in ``src``: enough videos
    to keep every core busy, under distinct ids."""
    for r in range(replicas):
        (dst / f"r{r}").mkdir(parents=True)
        for v in sorted(Path(src).iterdir()):
            (dst / f"r{r}" / v.name).symlink_to(v.resolve())
    return dst
