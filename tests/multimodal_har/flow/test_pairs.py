from multimodal_har.flow.pairs import dense_runs, needed_frames, num_pairs, plan_runs, tsn_runs


def test_dense():
    assert dense_runs(1) == [] and dense_runs(0) == []
    assert dense_runs(5) == [(0, 5)] and num_pairs(dense_runs(5)) == 4


def test_tsn_takes_k_snippets_of_l_pairs_at_segment_centres():
    runs = tsn_runs(300, 3, 5)
    assert runs == [(47, 53), (147, 153), (247, 253)]
    assert num_pairs(runs) == 15  # K x L, 20x fewer than dense for a 300-frame video
    assert all(a <= s and e <= b for (s, e), (a, b) in zip(runs, [(0, 100), (100, 200), (200, 300)]))


def test_tsn_on_short_videos():
    assert tsn_runs(4, 3, 5) == [(0, 4)]  # shorter than one snippet: every pair
    runs = tsn_runs(12, 3, 5)  # snippets overlap: merged, no pair twice
    assert runs == [(0, 12)] or num_pairs(runs) == len({k for s, e in runs for k in range(s, e - 1)})
    assert tsn_runs(1, 3, 5) == []
    assert plan_runs(10) == [(0, 10)]
    assert needed_frames([(0, 3), (5, 7)]) == {0, 1, 2, 5, 6}
