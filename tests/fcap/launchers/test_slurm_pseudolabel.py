"""Pseudolabeling as a SLURM job array: one element per shard, then the merge (Sec. 3.1)."""
import json

import pytest
from slurm_testing import cluster, done, experiment, record, submit, wait  # noqa: F401

pytestmark = pytest.mark.slurm

VIDEOS, SCENES = 3, 2  # 3 videos of 2 eight-second clips


def test_three_shard_array_labels_every_clip_once_and_merges(tmp_path, cluster, monkeypatch):
    from fcap.data.shapes import ShapesWorldConfig, ensure_shapes_world
    from fcap.pseudolabel.blip_labeler import tiny_blip_dir

    monkeypatch.setenv("FCAP_CACHE", str(tmp_path / "cache"))  # jobs inherit the environment
    tiny_blip_dir()  # built once here rather than raced by three jobs
    world = ShapesWorldConfig(msrvtt_videos=(1, 1, 1), msvd_videos=(1, 1, 1), howto_videos=VIDEOS,
                              howto_scenes=SCENES, laion_images=1, laion_shard_size=1)
    videos = ensure_shapes_world(str(tmp_path / "shapes"), world)["howto100m"]
    path = experiment(tmp_path, "plabel", {
        "label": {"task": "pseudolabel", "videos": videos, "num_shards": 3, "frame_size": 64,
                  "num_workers": 0, "sampling": {"max_new_tokens": 4},
                  "captioner": {"name": "blip", "source": "tiny", "cpu_threads": 1},
                  "resources": {"array": 3, "cpus_per_task": 1, "time_min": 10}},
        "merge": {"task": "pseudolabel_merge", "after": ["label"], "report_clips": 0,
                  "resources": {"cpus_per_task": 1, "time_min": 10}}})
    submit(path)
    runs = tmp_path / "runs" / "plabel" / "default"
    states = wait(path, timeout_s=240)
    assert [s for s, _ in states.values()] == ["done", "done"], states
    assert record(runs / "label")["array"] == 3

    elements = done(runs / "label")["summary"]["elements"]
    assert [e["shards"] for e in elements] == [[f"shard-0000{i}-of-00003"] for i in range(3)]
    manifests = sorted((runs / "label" / "shards").glob("*.manifest.json"))
    assert len(manifests) == 3
    records = [json.loads(x) for x in (runs / "merge" / "pseudolabels.jsonl").read_text().splitlines()]
    keys = [(r["video_id"], r["clip_index"]) for r in records]
    assert len(keys) == len(set(keys)) == VIDEOS * SCENES
    assert json.loads((runs / "merge" / "index.json").read_text())["counts"]["clips"] == VIDEOS * SCENES
