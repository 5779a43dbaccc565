"""caption_eval's skip accounting covers every rank's share of the split."""
from fcap.data import SkipStats
from fcap.eval import captioning


def stats(skipped, attempted):
    s = SkipStats(max_skip_fraction=1.0)
    s.record("msrvtt", attempted=attempted, skipped=skipped)
    return s


def test_one_rank_keeps_counts_reasons_and_examples():
    s = stats([("/v/a.mp4", "unreadable: decord cannot open it"),
               ("/v/b.mp4", "truncated: 3 of 795 frames")], attempted=10)
    assert captioning.skipped_items(s) == {"msrvtt": {
        "attempted": 10, "skipped": 2, "fraction": 0.2,
        "reasons": {"unreadable": 1, "truncated": 1},
        "examples": [["/v/a.mp4", "unreadable: decord cannot open it"],
                     ["/v/b.mp4", "truncated: 3 of 795 frames"]]}}


def test_every_ranks_skips_are_summed_not_only_rank_0s(monkeypatch):
    rank0 = stats([("/v/a.mp4", "unreadable: x")], attempted=50)
    rank1 = stats([("/v/c.mp4", "unreadable: y"), ("/v/d.mp4", "empty: zero-byte file")],
                  attempted=50)
    other = {"msrvtt": dict(rank1.summary()["msrvtt"],
                            examples=[list(x) for x in rank1.offending("msrvtt")])}
    # all_gather_object hands every rank the list of all ranks' objects
    monkeypatch.setattr(captioning, "_gather", lambda mine, world_size: [mine, other])
    merged = captioning.skipped_items(rank0, world_size=2)["msrvtt"]
    assert (merged["attempted"], merged["skipped"], merged["fraction"]) == (100, 3, 0.03)
    assert merged["reasons"] == {"unreadable": 2, "empty": 1}
    assert [p for p, _ in merged["examples"]] == ["/v/a.mp4", "/v/c.mp4", "/v/d.mp4"]
