"""The failure budget of a pseudolabel run: the data readers' rule applied to videos.

Every video of a collection ends labelled or listed as a failure with a reason
that names the cause (``KIND: detail``, fcap/data/media.py). A run stops with
:class:`~fcap.data.errors.SkipLimitError` when more than
``max_failure_fraction`` of its videos failed, or when it labelled no clip at
all (always an error, whatever the fraction). As in fcap/data/skips.py, a
part of the collection (one shard of several) is judged on its own only when
it holds at least ``MIN_ITEMS_FOR_LIMIT`` videos; the whole collection (the
task running every shard, and ``merge``) is always judged.
"""
from __future__ import annotations

from typing import Iterable

from fcap.data.errors import SkipLimitError
from fcap.data.skips import MIN_ITEMS_FOR_LIMIT, count_kinds, format_kinds, over_budget

DEFAULT_MAX_FAILURE_FRACTION = 0.05  # manifests written before the option existed
MAX_LISTED = 20  # failures listed in full; the rest are counted


def check_budget(manifests: Iterable[dict], max_fraction: float, *, whole: bool, where: str,
                 hint: str = "") -> None:
    """Raise SkipLimitError when the shards of ``manifests`` failed too many videos.

    ``whole``: the manifests cover the whole collection (then no labelled clip
    is an error, and any size is judged). ``where`` starts the message;
    ``hint`` ends it.
    """
    manifests = list(manifests)
    videos = sum(m["counts"]["videos"] for m in manifests)
    clips = sum(m["counts"]["clips"] for m in manifests)
    failures = [f for m in manifests for f in m["failures"]]
    judged = whole or videos >= MIN_ITEMS_FOR_LIMIT
    if whole and clips == 0:
        head = (f"{where}: no clip was labelled: {len(failures)} of {videos} videos failed"
                if videos else f"{where}: no clip was labelled: there are no videos")
    elif judged and over_budget(len(failures), videos, max_fraction):
        head = (f"{where}: {len(failures)} of {videos} videos ({len(failures) / videos:.1%}) "
                f"failed, above max_failure_fraction={max_fraction}")
    else:
        return
    raise SkipLimitError("\n".join([head] + describe(failures) + ([hint] if hint else [])))


def describe(failures: list[dict]) -> list[str]:
    """Message lines: the failures counted by reason, then the first ones in full."""
    if not failures:
        return []
    lines = [f"by reason: {format_kinds(count_kinds(f['error'] for f in failures))}",
             "first failures:"]
    for f in failures[:MAX_LISTED]:
        lines.append(f"  - {f.get('path') or f['video_id']}: {f['error']}")
    if len(failures) > MAX_LISTED:
        lines.append(f"  ... and {len(failures) - MAX_LISTED} more (every one is in the manifests)")
    return lines


def max_fraction_of(manifests: Iterable[dict]) -> float:
    """The label stage's budget, as its shards recorded it (the largest, if reruns changed it)."""
    values = [m.get("max_failure_fraction", DEFAULT_MAX_FAILURE_FRACTION) for m in manifests]
    return max(values, default=DEFAULT_MAX_FAILURE_FRACTION)
