"""The pseudolabel and pseudolabel_merge tasks through the registry, with the visual report."""
import html
import json
from pathlib import Path

import pytest

import fcap.pseudolabel  # noqa: F401
from fcap.config import from_dict
from fcap.context import StageContext
from fcap.pseudolabel.report import NO_ASR, asr_text
from registry import TASKS


def _ctx(run_dir: Path, stage: str, **kw) -> StageContext:
    return StageContext("exp", "default", stage, run_dir, "hash", **kw)


def test_label_then_merge_then_report_on_the_shapes_world(tmp_path, shapes_howto, shapes_option,
                                                          fcap_cache):
    label = TASKS.get("pseudolabel")
    marker = (shapes_howto.parent / "shapes-world.json").stat().st_mtime_ns
    cfg = from_dict(label.config, {"shapes": shapes_option, "num_shards": 2, "frame_size": 64,
                                   "num_workers": 0, "sampling": {"max_new_tokens": 6},
                                   "captioner": {"name": "blip", "source": "tiny", "cpu_threads": 1}})
    summary = label.obj(cfg, _ctx(tmp_path / "label", "label"))
    assert summary["shards"] == ["shard-00000-of-00002", "shard-00001-of-00002"]
    assert summary["clips"] == summary["clips_labelled_now"] == 2 * 3 and summary["failures"] == 0
    assert summary["clips_per_s"] > 0 and summary["caption_words_mean"] > 0
    assert label.obj(cfg, _ctx(tmp_path / "label", "label"))["skipped"] == summary["shards"]
    assert (shapes_howto.parent / "shapes-world.json").stat().st_mtime_ns == marker  # reused, not rebuilt

    merge = TASKS.get("pseudolabel_merge")
    mcfg = from_dict(merge.config, {"report_clips": 4})  # asr: the layout's own caption.json
    out = merge.obj(mcfg, _ctx(tmp_path / "merge", "merge", deps={"label": tmp_path / "label"}))
    assert out["clips"] == 6 and out["pseudolabels"] == str(tmp_path / "merge" / "pseudolabels.jsonl")
    page = (tmp_path / "merge" / "report" / "index.html").read_text()
    records = [json.loads(x) for x in (tmp_path / "merge" / "pseudolabels.jsonl").read_text().splitlines()]
    assert sum(html.escape(r["caption"]) in page for r in records) == 4
    asr = json.loads((shapes_howto / "caption.json").read_text())
    shown = [asr_text(asr, r["video_id"], r["start"], r["end"]) for r in records]
    assert sum(html.escape(s) in page for s in shown) >= 4 and NO_ASR not in page
    assert page.count("<img ") == 4 and len(list((tmp_path / "merge" / "report" / "frames").iterdir())) == 4
    # the world's ground truth: a column in the report, per-attribute accuracy in index.json
    from fcap.data.shapes.attributes import parse
    from fcap.data.shapes.truth import load_truth
    from fcap.pseudolabel.truth import describe

    truth = load_truth(shapes_howto.parent, "howto100m")
    assert sum(html.escape(describe(truth[f"{r['video_id']}#{r['clip_index']}"])) in page
               for r in records) >= 4 and "<th>ground truth</th>" in page
    index = json.loads((tmp_path / "merge" / "index.json").read_text())
    colour = sum(parse(r["caption"])["colour"] == truth[f"{r['video_id']}#{r['clip_index']}"]["colour"]
                 for r in records) / len(records)
    assert index["truth"]["clips"] == 6 and index["truth"]["clips_without_truth"] == 0
    assert index["truth"]["accuracy"]["colour"] == pytest.approx(colour, abs=1e-4)
    assert set(index["truth"]["accuracy"]) == {"colour", "shape", "direction", "background"}
    assert out["truth_accuracy"] == index["truth"]["accuracy"]
    from PIL import Image

    assert Image.open(tmp_path / "merge" / "report" / "contact_sheet.png").size[0] > 0


def test_shard_index_runs_one_shard(tmp_path, shapes_howto, fcap_cache):
    label = TASKS.get("pseudolabel")
    cfg = from_dict(label.config, {"videos": str(shapes_howto), "num_shards": 3, "shard_index": 1,
                                   "frame_size": 64, "num_workers": 0, "sampling": {"max_new_tokens": 4},
                                   "captioner": {"name": "blip", "source": "tiny", "cpu_threads": 1}})
    assert label.obj(cfg, _ctx(tmp_path, "label"))["shards"] == ["shard-00001-of-00003"]
    assert [p.name for p in (tmp_path / "shards").glob("*.manifest.json")] == \
        ["shard-00001-of-00003.manifest.json"]


def test_array_size_must_match_num_shards(tmp_path, shapes_howto):
    from fcap.experiment.spec import Resources

    label = TASKS.get("pseudolabel")
    cfg = from_dict(label.config, {"videos": str(shapes_howto), "num_shards": 4})
    ctx = _ctx(tmp_path, "label", resources=Resources(array=3), extra={"array_index": 0})
    with pytest.raises(ValueError, match="resources.array 3 differs from num_shards 4"):
        label.obj(cfg, ctx)


def test_merge_task_needs_to_know_which_dependency(tmp_path):
    merge = TASKS.get("pseudolabel_merge")
    ctx = _ctx(tmp_path, "merge", deps={"a": tmp_path / "a", "b": tmp_path / "b"})
    with pytest.raises(ValueError, match="needs exactly one dependency or 'shards_from'; dependencies: a, b"):
        merge.obj(from_dict(merge.config, {}), ctx)
    with pytest.raises(ValueError, match="shards_from 'c' is not a dependency of stage 'merge'"):
        merge.obj(from_dict(merge.config, {"shards_from": "c"}), ctx)


def test_asr_text_joins_the_segments_overlapping_the_clip():
    asr = {"v": {"start": [0.0, 3.0, 7.5, 9.0], "end": [2.5, 7.0, 9.0, 12.0],
                 "text": ["hello", "cut the onion", "now", "later"]}}
    assert asr_text(asr, "v", 2.0, 8.0) == "hello cut the onion now"
    assert asr_text(asr, "v", 12.0, 16.0) == NO_ASR
    assert asr_text(asr, "w", 0.0, 8.0) == NO_ASR


def test_more_report_clips_keep_the_merge_and_its_readers_and_force_rewrites_only_the_report(
        tmp_path, videos, fcap_cache, in_tmp):
    """report_clips, asr and the merge's failure budget are run options: pretraining, which
    chains on the merge's config hash, is not redone for a bigger report."""
    from fcap.cli import main
    from plabel_media import collection

    good, _ = videos
    root = collection(tmp_path / "videos", {p.name: p for p in sorted(good.iterdir())[:3]})
    toy_tasks = Path(__file__).parents[2] / "fixtures" / "plugins" / "toy_tasks.py"
    exp = tmp_path / "m.yaml"
    exp.write_text(f"""
name: m
output_root: {tmp_path / 'runs'}
plugins: [{toy_tasks}]
stages:
  label:
    task: pseudolabel
    videos: {root}
    captioner: {{name: blip, source: tiny, cpu_threads: 1}}
    num_workers: 0
    frame_size: 64
    sampling: {{max_new_tokens: 6}}
  merge: {{task: pseudolabel_merge, after: [label], report_clips: 2}}
  use: {{task: toy_write, note: {{from: merge, output: pseudolabels}}}}  # reads the labels
""")
    runs = tmp_path / "runs" / "m" / "default"
    assert main([str(exp)]) == 0
    done = {s: (runs / s / "DONE.json").read_text() for s in ("label", "merge", "use")}
    labels = (runs / "merge" / "pseudolabels.jsonl").read_bytes()
    assert len(list((runs / "merge" / "report" / "frames").iterdir())) == 2
    more = ["stages.merge.report_clips=4", f"stages.merge.asr={tmp_path / 'none.json'}",
            "stages.merge.max_failure_fraction=0.5"]
    assert main([str(exp), *more]) == 0  # complete: nothing runs again
    assert {s: (runs / s / "DONE.json").read_text() for s in done} == done
    assert main([str(exp), *more[:1], "--stages", "merge", "--force"]) == 0
    assert (runs / "merge" / "pseudolabels.jsonl").read_bytes() == labels
    assert len(list((runs / "merge" / "report" / "frames").iterdir())) == 4
    assert main([str(exp), *more[:1]]) == 0  # the reader of the merge stays complete
    assert (runs / "use" / "DONE.json").read_text() == done["use"]
    assert (runs.parent / "calls.txt").read_text() == "default/use\n"  # it ran once
