"""The learning sanity check (issue 5): video information flows through the adapters.

Fine-tune the tiny model on the shapes world's train videos and caption its
held-out test videos. Thresholds from bench/README.md's measurements
(pycocoevalcap CIDEr-D on 40 test videos, PTB tokenizer): trained 4.4,
shuffled 1.0, untrained 0.0.
"""
import json

from conftest import MODEL, run_stage

from conftest import TRAINED_STEPS as STEPS


def evaluate(shapes, name, **options):
    body = {"model": MODEL, "data": shapes["test"], "datasets": shapes["datasets"], "batch_size": 40,
            "metrics": ["cider"], **options}
    init = shapes["root"] / "pretrain" if name != "untrained" else None
    return run_stage(shapes["root"], f"eval-{name}", "caption_eval", body, init_from=init)


def test_training_lowers_the_loss(shapes, trained):
    rows = [json.loads(r) for r in (shapes["root"] / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in rows]
    assert len(losses) == STEPS // 20
    # The random tiny LM's head (std 0.02 weights after a LayerNorm) caps its logits
    # near +-1.3, so even perfect captions cost ~5 nats/token against ln(512) = 6.24
    # at chance: the measured drop is ~0.95 nats (bench/README.md).
    assert losses[0] - losses[-1] > 0.6, losses
    assert trained["bad_steps"] == 0 and trained["samples"] == STEPS * 16
    assert set(trained["gates"]) == {"layer2/attn", "layer2/ffn", "layer3/attn", "layer3/ffn"}
    assert (shapes["root"] / "pretrain" / "adapters" / "adapters.safetensors").is_file()
    assert json.loads((shapes["root"] / "pretrain" / "summary.json").read_text())["steps"] == STEPS


def test_captions_depend_on_the_video(shapes, trained):
    good = evaluate(shapes, "trained")["metrics"]["CIDEr"]
    shuffled = evaluate(shapes, "shuffled", shuffle_videos=True)["metrics"]["CIDEr"]
    untrained = evaluate(shapes, "untrained")["metrics"]["CIDEr"]
    assert good > 2.5, (good, shuffled, untrained)
    assert good > 2.5 * shuffled, (good, shuffled, untrained)
    assert untrained < 0.3, (good, shuffled, untrained)
    preds = json.loads((shapes["root"] / "eval-trained" / "predictions.json").read_text())
    assert len(preds) == 40 and all(k.startswith("video") for k in preds)
    metrics = json.loads((shapes["root"] / "eval-trained" / "metrics.json").read_text())
    assert metrics == {"CIDEr": good}
