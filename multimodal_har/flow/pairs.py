"""Which frame pairs to compute: every consecutive pair (dense), or only those a TSN-style
sampler reads (sparse): ``K`` segments x ``L`` consecutive pairs (Wang et al., ECCV 2016,
test-time snippets: the centre of each segment).

Positions count the *kept* frames (after ``fps`` / ``stride`` sampling), so a pair is two
consecutive kept frames. Plans are lists of runs ``(start, stop)``: frames ``start..stop-1``,
giving the ``stop - start - 1`` pairs ``(k, k + 1)`` for ``start <= k < stop - 1``.
"""

from __future__ import annotations

from typing import Optional

Run = tuple[int, int]


def dense_runs(num_frames: int) -> list[Run]:
    return [(0, num_frames)] if num_frames >= 2 else []


def tsn_runs(num_frames: int, segments: int, length: int) -> list[Run]:
    """The centre snippet of ``L = length`` consecutive pairs in each of ``K = segments`` equal
    segments. Overlapping snippets (short videos) are merged; a video shorter than one snippet
    gives all its pairs."""
    if segments < 1 or length < 1:
        raise ValueError(f"segments and length must be >= 1, got {segments}, {length}")
    if num_frames < 2:
        return []
    need = length + 1
    if num_frames <= need:
        return [(0, num_frames)]
    runs: list[Run] = []
    for k in range(segments):
        a = k * num_frames // segments
        b = (k + 1) * num_frames // segments
        start = a + max(0, (b - a - need) // 2)
        start = min(start, num_frames - need)
        runs.append((start, start + need))
    merged: list[Run] = []
    for s, e in sorted(runs):
        if merged and s <= merged[-1][1] - 1:  # shares a frame: one run
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def plan_runs(num_frames: int, *, segments: Optional[int] = None, length: int = 5) -> list[Run]:
    """Dense when ``segments`` is None, else :func:`tsn_runs`."""
    return dense_runs(num_frames) if segments is None else tsn_runs(num_frames, segments, length)


def num_pairs(runs: list[Run]) -> int:
    return sum(e - s - 1 for s, e in runs)


def needed_frames(runs: list[Run]) -> set[int]:
    return {k for s, e in runs for k in range(s, e)}
