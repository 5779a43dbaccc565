"""Tiny BLIPs: the random one sees its input; the pretrained one captions with the world's words."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fcap.pseudolabel.blip_labeler import tiny_blip_dir


def _first_step_logits(model, pixels: torch.Tensor) -> torch.Tensor:
    bos = model.config.text_config.bos_token_id
    with torch.no_grad():
        image = model.vision_model(pixel_values=pixels)[0]
        ids = torch.full((pixels.shape[0], 1), bos, dtype=torch.long)
        return model.text_decoder(input_ids=ids, encoder_hidden_states=image).logits[:, -1]


def test_random_tiny_blip_is_not_blind(fcap_cache):
    # transformers' BlipVisionConfig defaults to initializer_range=1e-10: every vision
    # weight ~1e-10, and two images' first-step logits differed by at most 4e-8. With the
    # builder's 0.02 they differ by ~2e-3 (the random text decoder weighs the image little:
    # greedy captions of different images can still coincide).
    from transformers import BlipForConditionalGeneration

    model = BlipForConditionalGeneration.from_pretrained(tiny_blip_dir()).eval()
    size = model.config.vision_config.image_size
    g = torch.Generator().manual_seed(0)
    images = torch.stack([torch.rand(3, size, size, generator=g) * 2 - 1,
                          torch.rand(3, size, size, generator=g) * 2 - 1])
    logits = _first_step_logits(model, images)
    assert (logits[0] - logits[1]).abs().max() > 1e-4
    assert model.vision_model.embeddings.patch_embedding.weight.std() > 1e-2


@pytest.fixture
def short_blip(monkeypatch, fcap_cache):
    from fcap.models import pretrain_tiny
    from fcap.models.pretrain_tiny.blip import BlipRecipe

    monkeypatch.setitem(pretrain_tiny.RECIPES, "blip",
                        BlipRecipe(steps=30, batch_size=16, heldout_images=16))
    threads = torch.get_num_threads()
    yield tiny_blip_dir(pretrained=True)
    torch.set_num_threads(threads)


def test_pretrained_tiny_blip_is_cached_with_its_quality_and_captions_through_the_captioner(
        short_blip, fcap_cache):
    from fcap.pseudolabel.blip_labeler import BlipLabeler, BlipLabelerConfig
    from fcap.pseudolabel.config import SamplingConfig

    assert short_blip.parent == fcap_cache / "models"
    assert short_blip.name.startswith("tiny-pretrained-blip-")
    assert tiny_blip_dir(pretrained=True) == short_blip != tiny_blip_dir()
    quality = json.loads((short_blip / "quality.json").read_text())
    for where in ("heldout_images", "heldout_video_frames"):
        assert set(quality[where]) == {"colour", "shape", "background", "mentions_direction"}
    captioner = BlipLabeler(BlipLabelerConfig(source=str(short_blip), cpu_threads=1))
    frames = torch.from_numpy(np.full((2, 64, 64, 3), 120, dtype=np.uint8))
    out = captioner.caption(frames, seeds=[[0], [1]], sampling=SamplingConfig(max_new_tokens=8))
    assert len(out) == 2 and all(isinstance(c[0], str) for c in out)


def test_pretrained_tiny_blip_vocabulary_spells_every_world_caption(short_blip):
    from transformers import BlipProcessor

    from fcap.data.shapes.render import (BACKGROUNDS, COLOURS, DIRECTIONS, IMAGE_TEMPLATES,
                                         SHAPES, VIDEO_TEMPLATES)

    tokenizer = BlipProcessor.from_pretrained(short_blip).tokenizer
    unk = tokenizer.unk_token_id
    for template in (*IMAGE_TEMPLATES, *VIDEO_TEMPLATES):
        for colour in COLOURS:
            for background in BACKGROUNDS:
                for shape in SHAPES:
                    for direction in DIRECTIONS:
                        text = template.format(colour=colour, shape=shape, direction=direction,
                                               background=background)
                        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
                        assert unk not in ids, text
                        assert tokenizer.decode(ids) == text
