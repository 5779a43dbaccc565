"""Pretrained tiny models (``source: tiny-pretrained``): cached, deterministic, loaded like real ones.

The default recipes take 2-4 minutes together (bench/README.md); these
tests swap in short recipes through ``pretrain_tiny.RECIPES``, which are part
of the cache key, so nothing here reuses or pollutes a default build.
"""
from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
import torch

from fcap.models import pretrain_tiny
from fcap.models.pretrain_tiny import corpus
from fcap.models.pretrain_tiny.opt import OPTRecipe
from fcap.models.pretrain_tiny.timesformer import TimesformerRecipe
from fcap.models.sources import weights_hash
from fcap.models.tiny import TinyOPT, TinyTimesformer

SHORT_OPT = OPTRecipe(sentences=600, heldout=100, steps=40, batch_size=32)
SHORT_TIMESFORMER = TimesformerRecipe(steps=40, batch_size=16, motion_first_steps=0,
                                      heldout_clips=64)


@pytest.fixture
def short_recipes(monkeypatch):
    monkeypatch.setitem(pretrain_tiny.RECIPES, "opt", SHORT_OPT)
    monkeypatch.setitem(pretrain_tiny.RECIPES, "timesformer", SHORT_TIMESFORMER)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tiny_pretrained_opt_loads_through_the_lm_family_and_learned_the_corpus(short_recipes,
                                                                               fcap_cache):
    from fcap.models.lm import OPTLanguageModel, OPTSource

    lm = OPTLanguageModel(OPTSource(source="tiny-pretrained"))
    folder = pretrain_tiny.built_dir(TinyOPT())
    assert folder is not None and folder.parent == fcap_cache / "models"
    assert folder.name.startswith("tiny-pretrained-opt-")
    quality = json.loads((folder / "quality.json").read_text())
    # 40 short steps already put it far below a model that knows nothing (uniform: 512)
    assert quality["uniform_perplexity"] == len(lm.tokenizer) == 512
    assert quality["heldout_perplexity"] < 100
    # its tokenizer was trained on the caption corpus: the world's words are whole tokens
    for word in ("background", "purple", "triangle", "slides"):
        assert len(lm.tokenizer(" " + word, add_special_tokens=False)["input_ids"]) == 1, word
    random_lm = OPTLanguageModel(OPTSource(source="tiny"))
    assert random_lm.identity()["weights_hash"] != lm.identity()["weights_hash"]


def test_builds_are_deterministic_and_keyed_by_recipe(tmp_path, monkeypatch, one_thread):
    from transformers import OPTForCausalLM

    hashes, folders = [], []
    shortest = OPTRecipe(sentences=300, heldout=50, steps=5, batch_size=16)
    for name, recipe in (("a", shortest), ("b", shortest),
                         ("c", OPTRecipe(**{**shortest.__dict__, "steps": 6}))):
        monkeypatch.setenv("FCAP_CACHE", str(tmp_path / name))
        monkeypatch.setitem(pretrain_tiny.RECIPES, "opt", recipe)
        folder = pretrain_tiny.pretrained_dir(TinyOPT())
        folders.append(folder.name)
        hashes.append(weights_hash(OPTForCausalLM.from_pretrained(folder)))
    assert folders[0] == folders[1] != folders[2]  # the recipe is part of the cache key
    assert hashes[0] == hashes[1] != hashes[2]  # same recipe, same weights, in another cache


def test_qualities_reads_the_cache_and_never_builds(short_recipes, tmp_path, monkeypatch):
    monkeypatch.setenv("FCAP_CACHE", str(tmp_path / "cache"))  # other tests may build the BLIP
    before = pretrain_tiny.qualities()
    pretrain_tiny.pretrained_dir(TinyOPT())
    after = pretrain_tiny.qualities()
    assert after["opt"]["path"] == str(pretrain_tiny.built_dir(TinyOPT()))
    assert after["opt"]["heldout_perplexity"] > 1
    # the BLIP was never built in this fresh cache; asking for its quality did not build it
    assert before["blip"] is None and after["blip"] is None
    assert pretrain_tiny.built_dir(pretrain_tiny.kinds()["blip"]) is None


def test_tiny_pretrained_timesformer_is_a_frozen_encoder_with_probe_quality(short_recipes):
    from fcap.models.visual import TimesformerEncoder, TimesformerSource

    encoder = TimesformerEncoder(TimesformerSource(source="tiny-pretrained"))
    folder = pretrain_tiny.built_dir(TinyTimesformer())
    quality = json.loads((folder / "quality.json").read_text())
    assert set(quality["heldout_accuracy"]) == {"colour", "shape", "direction", "background"}
    assert set(quality["chance"]) == set(quality["heldout_accuracy"])
    # 40 steps of 16 clips: the plain background is already told apart well above chance
    assert quality["heldout_accuracy"]["background"] > 2 * quality["chance"]["background"]
    assert (folder / "probe_heads.safetensors").is_file()
    feats = encoder.encode(torch.zeros(2, 4, 3, 32, 32))
    assert feats.shape == (2, 4, 16, 64)


def test_corpus_never_holds_a_reference_the_world_writes(tmp_path):
    from fcap.data.shapes import ShapesWorldConfig, ensure_shapes_world

    roots = ensure_shapes_world(str(tmp_path / "w"), ShapesWorldConfig(
        msrvtt_videos=(2, 6, 6), msvd_videos=(1, 4, 4), howto_videos=1, howto_scenes=1,
        laion_images=1, laion_shard_size=1))
    written = set()
    for name in ("train_val_videodatainfo.json", "test_videodatainfo.json"):
        info = json.load(open(os.path.join(roots["msrvtt"], name)))
        written |= {s["caption"] for s in info["sentences"]}
    for line in open(os.path.join(roots["msvd"], "AllVideoDescriptions.txt")):
        if not line.startswith("#"):
            written.add(line.strip().split(" ", 1)[1])
    assert written <= corpus.references()  # the banned set covers what the world writes
    lines = corpus.sentences(SHORT_OPT.sentences * 10, seed=0)
    assert len(lines) == len(set(lines)) == 6000
    assert not set(lines) & corpus.references()
    # ... and yet it speaks their language: every word of the references occurs
    assert {w for r in written for w in r.split()} <= {w for line in lines for w in line.split()}


def _build_in_child(cache: str, log: str) -> None:
    os.environ["FCAP_CACHE"] = cache
    from fcap.models import tiny_cache

    def build(out, options):
        with open(log, "a") as f:
            f.write("built\n")
        import time

        time.sleep(1.0)  # long enough for the other process to find the build in progress
        (out / "weights.bin").write_bytes(b"x")

    tiny_cache.tiny_dir("locktest", TinyOPT(), build, prefix="tiny-pretrained")


def test_a_second_process_waits_for_a_build_in_progress_instead_of_repeating_it(tmp_path):
    log = tmp_path / "builds.log"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_build_in_child, args=(str(tmp_path / "cache"), str(log)))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text() == "built\n"
    built = list((tmp_path / "cache" / "models").glob("tiny-pretrained-locktest-*"))
    assert len(built) == 1 and (built[0] / "weights.bin").is_file()
    assert not list((tmp_path / "cache" / "models").glob(".building-*"))  # scratch removed


@pytest.fixture
def fake_builds(tmp_path, monkeypatch):
    """Each kind's build replaced by one that sleeps a little and logs kind, pid and times."""
    import time

    from fcap.models.pretrain_tiny import blip, opt, timesformer

    log = tmp_path / "builds.jsonl"
    monkeypatch.setenv("FCAP_CACHE", str(tmp_path / "cache"))
    fail = set()

    def fake(kind):
        def build(out, spec):
            start = time.time()
            if kind in fail:
                raise RuntimeError(f"{kind} build broke")
            time.sleep(0.5)
            (out / "weights.bin").write_bytes(kind.encode())
            with open(log, "a") as f:
                f.write(json.dumps({"kind": kind, "pid": os.getpid(), "start": start,
                                    "end": time.time()}) + "\n")
        return build

    for module, kind in ((opt, "opt"), (timesformer, "timesformer"), (blip, "blip")):
        monkeypatch.setattr(module, "build", fake(kind))

    def builds():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return builds, fail


def _hold_build_lock(dims):
    """Take the build lock of ``dims``' pretrained folder, as a process building it would."""
    import fcntl

    from fcap.io import claim_dir
    from fcap.models.tiny_cache import tiny_path

    kind, spec, _ = pretrain_tiny.spec_for(dims)
    folder, _ = tiny_path(kind, spec, version=pretrain_tiny._key_version(),
                          prefix="tiny-pretrained")
    locks = claim_dir(folder.parent / ".locks", kind="tiny model build locks", key="FCAP_CACHE")
    lock = open(locks / f"{folder.name}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def test_prepare_builds_the_longest_first_and_one_building_elsewhere_last(fake_builds):
    import threading

    builds, _ = fake_builds
    folders = pretrain_tiny.prepare([TinyOPT(), TinyTimesformer()])
    assert [b["kind"] for b in builds()] == ["timesformer", "opt"]  # longest first
    assert folders == [pretrain_tiny.built_dir(TinyOPT()), pretrain_tiny.built_dir(TinyTimesformer())]

    # a fresh cache where another process is building the TimeSformer: the LM is built meanwhile
    os.environ["FCAP_CACHE"] += "-2"
    lock = _hold_build_lock(TinyTimesformer())
    done = []
    worker = threading.Thread(target=lambda: done.append(
        pretrain_tiny.prepare([TinyOPT(), TinyTimesformer()])))
    worker.start()
    for _ in range(100):
        if builds()[2:]:
            break
        worker.join(0.1)
    assert [b["kind"] for b in builds()[2:]] == ["opt"]
    worker.join(1.0)
    assert worker.is_alive() and not done  # waiting for the TimeSformer's lock
    lock.close()  # that process ended without building it: this one builds it
    worker.join(30)
    assert [b["kind"] for b in builds()[2:]] == ["opt", "timesformer"]
    assert done[0] == [pretrain_tiny.built_dir(TinyOPT()), pretrain_tiny.built_dir(TinyTimesformer())]


def test_build_all_builds_in_processes_side_by_side(fake_builds):
    builds, _ = fake_builds
    built = pretrain_tiny.build_all(workers=2)
    assert set(built) == {"opt", "timesformer", "blip"}
    for kind, quality in built.items():
        assert quality["path"] == str(pretrain_tiny.built_dir(pretrain_tiny.kinds()[kind]))
    log = builds()
    assert sorted(b["kind"] for b in log) == ["blip", "opt", "timesformer"]  # each once
    pids = {b["pid"] for b in log}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes built them
    first = {b["kind"]: b for b in log}["timesformer"]  # the longest, taken first ...
    others = [b for b in log if b["pid"] != first["pid"]]
    assert others and others[0]["start"] < first["end"]  # ... while the other worker built too
    assert pretrain_tiny.build_all(workers=2) == built  # all found now: nothing built again
    assert len(builds()) == 3


def test_build_all_raises_what_broke_in_a_worker(fake_builds, caplog):
    builds, fail = fake_builds
    fail.add("blip")
    with pytest.raises(RuntimeError, match="blip build broke"):
        pretrain_tiny.build_all(workers=2)
    assert "exited with code 1" in caplog.text  # the worker that hit it
    assert "timesformer" in [b["kind"] for b in builds()]  # built by the other worker, kept
    assert pretrain_tiny.built_dir(pretrain_tiny.kinds()["timesformer"]) is not None
    assert pretrain_tiny.built_dir(pretrain_tiny.kinds()["blip"]) is None
    models = Path(os.environ["FCAP_CACHE"]) / "models"
    assert not list(models.glob(".building-*"))  # the broken build's scratch folder removed


def test_timesformer_batches_from_the_worker_are_the_clips_drawn_in_process():
    import numpy as np

    from fcap.models.pretrain_tiny import timesformer

    recipe = TimesformerRecipe(steps=3, batch_size=2, heldout_clips=5, seed=4)
    state = torch.random.get_rng_state()
    drawn = list(timesformer.batches(TinyTimesformer(), recipe))
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's torch stream untouched
    rng = np.random.default_rng([recipe.seed, timesformer.STREAM])
    expected = [timesformer.clips(rng, n, dims=TinyTimesformer(), rendered_frames=8)
                for n in (2, 2, 2, 5)]  # 3 training batches, then the held-out clips
    assert len(drawn) == len(expected)
    for (pixels, targets), (want_pixels, want_targets) in zip(drawn, expected):
        assert torch.equal(pixels, want_pixels)
        assert targets.keys() == want_targets.keys()
        assert all(torch.equal(targets[k], want_targets[k]) for k in targets)


def _batches_in_daemon(queue) -> None:
    from fcap.models.pretrain_tiny import timesformer

    torch.set_num_threads(1)  # no OpenMP team after a fork (as fcap's forked processes do)

    recipe = TimesformerRecipe(steps=1, batch_size=2, heldout_clips=3)
    queue.put([pixels.numpy() for pixels, _ in timesformer.batches(TinyTimesformer(), recipe)])


def test_timesformer_batches_in_a_daemonic_process_are_drawn_there_the_same():
    from fcap.models.pretrain_tiny import timesformer

    recipe = TimesformerRecipe(steps=1, batch_size=2, heldout_clips=3)
    here = [pixels for pixels, _ in timesformer.batches(TinyTimesformer(), recipe)]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    daemon = ctx.Process(target=_batches_in_daemon, args=(queue,), daemon=True)
    daemon.start()
    got = queue.get(timeout=60)  # a DataLoader worker there would raise: no children allowed
    daemon.join(30)
    assert daemon.exitcode == 0 and len(got) == len(here) == 2
    assert all(torch.equal(torch.from_numpy(a), b) for a, b in zip(got, here))
