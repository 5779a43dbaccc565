"""What a person sees while the tiny profile runs: fcap's lines, no third-party progress bars
and no known-harmless library warnings; real warnings still pass."""
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

MINIMAL = Path(__file__).resolve().parents[1] / "fixtures" / "profiles" / "minimal.yaml"  # tiny
# Printed by transformers on every load / tiny-model build before fcap quieted its loads.
NOISE = ("Loading weights", "Writing model shards", "it/s]", "requires torchvision")


def test_tiny_stages_print_no_third_party_progress_bars_or_fallback_warning(tmp_path):
    exp = tmp_path / "quiet.yaml"
    exp.write_text(textwrap.dedent("""
        name: quiet
        stages:
          label: {task: pseudolabel, once: true, captioner: {name: blip, source: tiny}}
          evaluate: {task: caption_eval, data: {name: msrvtt, root: msrvtt, split: val}}
    """))
    # a fresh cache: the tiny BLIP, OPT and TimeSformer are built (save_pretrained) and loaded
    env = dict(os.environ, FCAP_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "fcap.cli", str(exp), "--profile", str(MINIMAL)],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    console = proc.stdout
    assert proc.returncode == 0, console[-3000:]
    assert "done all_variants/label" in console and "CIDEr=" in console  # fcap's own lines stay
    assert [n for n in NOISE if n in console] == [], console[-3000:]


def test_quiet_loading_drops_only_the_known_harmless_messages():
    import huggingface_hub.utils as hub
    from transformers.utils import logging as hf_logging

    from fcap.models.sources import quiet_loading

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers.utils.import_utils")
    logger.addHandler(handler)
    fallback = ("`BlipImageProcessor` requires torchvision (not installed); falling back to "
                "`BlipImageProcessorPil` for backward compatibility.")
    bars, hub_bars = hf_logging.is_progress_bar_enabled(), hub.are_progress_bars_disabled()
    try:
        with quiet_loading():
            assert not hf_logging.is_progress_bar_enabled()
            assert hub.are_progress_bars_disabled() == hub_bars  # download bars as they were
            logger.warning(fallback)
            logger.warning("a real problem")
        logger.warning(fallback)  # outside fcap's loads nothing is filtered
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["a real problem", fallback]
    assert hf_logging.is_progress_bar_enabled() == bars
    assert hub.are_progress_bars_disabled() == hub_bars
