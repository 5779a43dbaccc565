"""Validate a complete set of pseudolabel shards and write the merged index.

``python -m fcap.pseudolabel.merge <out> [--dest DIR] [--report N] [--asr caption.json]``

Reads ``<out>/shards/`` and checks that every shard of ``num_shards`` is
finished with the same settings, that no video is in two shards, and that
every clip of every readable video is labelled exactly once (and, when the
collection folder is reachable, that every video of it was assigned). Writes
``<dest>/pseudolabels.jsonl`` (sorted by video_id, clip_index) and
``<dest>/index.json`` (docs/CONTRACTS.md); ``dest`` defaults to ``<out>``.
All problems are collected and raised together. Then the failure budget
(failures.py) is applied to the whole collection: more than
``max_failure_fraction`` of the videos failed, or no clip labelled, raises
SkipLimitError and writes nothing.

Ownership (fcap/io.py): a ``dest`` the user names is claimed (a folder holding
files fcap did not write is refused). The default ``dest``, and a stage's run
directory, are written beside their other files: an existing
``pseudolabels.jsonl`` or ``index.json`` there is replaced only when a previous
merge wrote it (``index.json`` records the sha256 of the ``pseudolabels.jsonl``
it describes), and ``report/`` is a claimed folder.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import fcap
from fcap.data.errors import DataError, SkipLimitError
from fcap.io import OwnershipError, claim_dir, is_owned, write_json_atomic, write_text_atomic
from fcap.pseudolabel.collection import list_videos, shard_name
from fcap.pseudolabel.config import PseudolabelConfig
from fcap.pseudolabel.failures import check_budget, max_fraction_of
from fcap.pseudolabel.files import RECORD_KEYS, ShardPaths, dumps_jsonl, read_jsonl
from fcap.pseudolabel.truth import against_truth

MAX_LISTED = 20  # problems listed in full; the rest are counted


class MergeError(ValueError):
    """The shards do not form one complete, consistent labelling."""


def _load_shards(shards_dir: Path, problems: list[str]) -> list[tuple[ShardPaths, dict]]:
    manifests = sorted(shards_dir.glob("shard-*.manifest.json"))
    if not manifests:
        raise MergeError(f"{shards_dir}: no finished shard (no shard-*.manifest.json)")
    loaded = [(ShardPaths(shards_dir, p.name[:-len(".manifest.json")]), json.loads(p.read_text()))
              for p in manifests]
    first = loaded[0][1]
    n = first["num_shards"]
    for paths, m in loaded[1:]:
        if m.get("settings") != first.get("settings"):
            problems.append(f"{paths.manifest}: settings differ from {loaded[0][0].manifest}")
    names = {paths.name for paths, _ in loaded}
    missing = [shard_name(i, n) for i in range(n) if shard_name(i, n) not in names]
    if missing:
        running = [m for m in missing if (shards_dir / f"{m}.progress.jsonl").is_file()]
        problems.append(f"{shards_dir}: {len(missing)} of {n} shards not finished: "
                        f"{', '.join(missing[:MAX_LISTED])}"
                        + (f" (in progress: {', '.join(running[:MAX_LISTED])})" if running else ""))
    extra = sorted(names - {shard_name(i, n) for i in range(n)})
    if extra:
        problems.append(f"{shards_dir}: shards of another num_shards than {n}: {', '.join(extra)}")
    return [(p, m) for p, m in loaded if p.name not in extra]


def _check_records(loaded, problems: list[str]) -> tuple[list[dict], dict[str, int], list[dict]]:
    owner: dict[str, str] = {}
    videos: dict[str, int] = {}
    failures: list[dict] = []
    records: dict[tuple[str, int], dict] = {}
    for paths, m in loaded:
        for vid in list(m["videos"]) + [f["video_id"] for f in m["failures"]]:
            if vid in owner:
                problems.append(f"video {vid} is in both {owner[vid]} and {paths.name}")
            owner[vid] = paths.name
        videos.update(m["videos"])
        failures += m["failures"]
        seen: dict[str, set[int]] = {}
        for row in read_jsonl(paths.records):
            lacking = [k for k in RECORD_KEYS if k not in row]
            if lacking:
                problems.append(f"{paths.records}: record {row} lacks {', '.join(lacking)}")
                continue
            key = (row["video_id"], row["clip_index"])
            if key in records:
                problems.append(f"{paths.records}: clip {key[1]} of {key[0]} labelled twice")
            records[key] = row
            seen.setdefault(row["video_id"], set()).add(row["clip_index"])
        for vid in sorted(set(seen) | set(m["videos"])):
            expected = set(range(m["videos"].get(vid, 0)))
            got = seen.get(vid, set())
            if vid not in m["videos"]:
                problems.append(f"{paths.records}: records for {vid}, which its manifest does not list")
            elif got != expected:
                gaps, extra = sorted(expected - got), sorted(got - expected)
                problems.append(f"{paths.records}: video {vid}: missing clips {gaps[:MAX_LISTED]}, "
                                f"unexpected clips {extra[:MAX_LISTED]}")
    return [records[k] for k in sorted(records)], videos, failures


def _check_collection(settings: dict, covered: set[str], problems: list[str]) -> bool:
    """Every video of the collection is in some shard; False when the folder is not reachable."""
    if not Path(settings["videos"]).expanduser().is_dir():
        return False
    cfg = PseudolabelConfig(videos=settings["videos"], ids=settings["ids"],
                            extensions=tuple(settings["extensions"]))
    try:
        listed = list_videos(cfg)
    except DataError:  # emptied since labelling: no video can be missing from the shards
        listed = {}
    absent = sorted(set(listed) - covered)
    if absent:
        problems.append(f"{len(absent)} videos of {settings['videos']} are in no shard: "
                        f"{', '.join(absent[:MAX_LISTED])}")
    return True


OUTPUTS = ("pseudolabels.jsonl", "index.json")


def merge(out: str | Path, dest: str | Path | None = None, *, key: str = "dest",
          claim_dest: bool = True, max_failure_fraction: float | None = None) -> dict:
    """Validate ``<out>/shards`` and write ``pseudolabels.jsonl`` + ``index.json`` to ``dest``.

    A given ``dest`` is claimed (OwnershipError naming it and ``key`` if it
    holds files fcap did not write) unless ``claim_dest`` is False (a stage's
    run directory); see the module docstring. ``max_failure_fraction``: the
    budget (None: the one the label stage recorded in its manifests).
    """
    if max_failure_fraction is not None and not 0.0 <= max_failure_fraction <= 1.0:
        raise ValueError(f"max_failure_fraction must be in [0, 1], got {max_failure_fraction}")
    out = Path(out)
    claim = dest is not None and claim_dest
    dest = Path(dest) if dest is not None else out
    problems: list[str] = []
    loaded = _load_shards(out / "shards", problems)
    records, videos, failures = _check_records(loaded, problems)
    settings = loaded[0][1]["settings"]
    checked = _check_collection(settings, set(videos) | {f["video_id"] for f in failures}, problems)
    if problems:
        head = f"pseudolabel merge of {out / 'shards'}: {len(problems)} problem(s)"
        shown = problems[:MAX_LISTED] + ([f"... and {len(problems) - MAX_LISTED} more"]
                                         if len(problems) > MAX_LISTED else [])
        raise MergeError("\n  - ".join([head] + shown))
    manifests = [m for _, m in loaded]
    limit = max_failure_fraction if max_failure_fraction is not None else max_fraction_of(manifests)
    check_budget(manifests, limit, whole=True, where=f"pseudolabel merge of {out / 'shards'}",
                 hint="Fix or replace those videos and label their shards again, or raise "
                      "max_failure_fraction to accept the failures.")
    if claim:
        claim_dir(dest, kind="pseudolabel merge output", key=key)
    else:
        _check_replaceable(dest)
    text = dumps_jsonl(records)
    write_text_atomic(dest / "pseudolabels.jsonl", text, fsync=True)
    stats = [m["stats"] for m in manifests]
    words = [len(r["caption"].split()) for r in records]
    wall = sum(s["wall_s"] for s in stats)
    index = {
        "pseudolabels": "pseudolabels.jsonl", "fcap_version": fcap.__version__,
        "pseudolabels_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "shards_dir": str((out / "shards").resolve()), "num_shards": manifests[0]["num_shards"],
        "captioner": manifests[0]["captioner"], "sampling": settings["sampling"],
        "clips": settings["clips"], "frame_size": settings["frame_size"], "seed": settings["seed"],
        "collection": {"videos": settings["videos"], "ids": settings["ids"],
                       "extensions": settings["extensions"], "checked": checked},
        "counts": {"videos": len(videos) + len(failures), "videos_labelled": len(videos),
                   "clips": len(records), "failures": len(failures)},
        "stats": {"caption_words_mean": round(sum(words) / len(words), 3) if words else None,
                  "decode_s": round(sum(s["decode_s"] for s in stats), 3),
                  "caption_s": round(sum(s["caption_s"] for s in stats), 3),
                  "wall_s_last_runs": round(wall, 3),
                  "clips_per_s_last_runs": round(sum(s["clips_this_run"] for s in stats) / wall, 3)
                  if wall > 0 else None},
        "failures": failures, "max_failure_fraction": limit,
        # the shapes world only: the pseudolabels per attribute vs its ground truth (None: real data)
        "truth": against_truth(records, settings["videos"]),
        "shards": [{k: m[k] for k in ("shard", "counts", "stats", "captioner", "created")}
                   for m in manifests],
    }
    write_json_atomic(dest / "index.json", index, fsync=True)
    return index


def _check_replaceable(dest: Path) -> None:
    """OwnershipError unless every existing output in ``dest`` was written by a previous merge."""
    if is_owned(dest):
        return
    foreign = [dest / name for name in OUTPUTS if (dest / name).exists() and not _merge_wrote(dest, name)]
    if foreign:
        raise OwnershipError(
            f"fcap will not overwrite {', '.join(str(p) for p in foreign)}: {dest} has no fcap "
            "marker and no index.json of an earlier merge recording these files as it wrote them "
            "(changed by hand, or not fcap's). Move them away or merge into another folder "
            "(--dest).")


def _merge_wrote(dest: Path, name: str) -> bool:
    try:
        index = json.loads((dest / "index.json").read_text())
    except (OSError, ValueError):
        return False
    if not (isinstance(index, dict) and index.get("pseudolabels") == OUTPUTS[0]
            and "fcap_version" in index and isinstance(index.get("pseudolabels_sha256"), str)):
        return False
    if name == "index.json":
        return True
    h = hashlib.sha256()
    with open(dest / name, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() == index["pseudolabels_sha256"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fcap.pseudolabel.merge", description=__doc__.split("\n")[0])
    parser.add_argument("out", help="folder holding shards/ (the pseudolabel stage's run dir)")
    parser.add_argument("--dest", default=None, help="where to write pseudolabels.jsonl and index.json")
    parser.add_argument("--report", type=int, default=0, help="clips in the visual report (0: none)")
    parser.add_argument("--asr", default=None, help="HowTo100M caption.json for the report's ASR column")
    parser.add_argument("--max-failure-fraction", type=float, default=None,
                        help="stop above this fraction of failed videos (default: the label stage's)")
    args = parser.parse_args(argv)
    dest = Path(args.dest or args.out)
    try:
        index = merge(args.out, args.dest, key="--dest", max_failure_fraction=args.max_failure_fraction)
        if args.report:
            from fcap.pseudolabel.report import write_report

            write_report(dest, n=args.report, asr=args.asr)
    except (MergeError, SkipLimitError, OwnershipError) as err:
        from fcap.exit_codes import code_for

        print(err, file=sys.stderr)
        return code_for(err) or 1  # 3 data error, 5 refused (fcap/exit_codes.py)
    print(json.dumps(index["counts"] | {"caption_words_mean": index["stats"]["caption_words_mean"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
