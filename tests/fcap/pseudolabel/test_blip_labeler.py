"""The BLIP pseudolabeller: loaded through from_pretrained, seeded per frame, batch-independent."""
import json

import pytest
import torch

from fcap.models.sources import weights_hash
from fcap.pseudolabel.blip_labeler import BlipLabeler, BlipLabelerConfig, tiny_blip_dir
from fcap.pseudolabel.config import SamplingConfig
from registry import MODELS

SAMPLING = SamplingConfig(max_new_tokens=10)


@pytest.fixture(scope="module")
def frames():
    return torch.randint(0, 256, (6, 64, 64, 3), generator=torch.Generator().manual_seed(0),
                         dtype=torch.uint8)


def test_tiny_source_is_a_saved_checkpoint_loaded_like_the_hub_one(captioner, fcap_cache):
    folder = tiny_blip_dir()
    assert folder.parent == fcap_cache / "models"
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["BlipForConditionalGeneration"]
    assert len(captioner.processor.tokenizer) > 50  # not the 2-token vocab of the path-built trap
    assert MODELS.get("blip").obj is BlipLabeler and BlipLabeler.role == "labeler"
    # A folder source loads the same weights as the tiny alias; the hash is fcap's one format.
    other = BlipLabeler(BlipLabelerConfig(source=str(folder), cpu_threads=1))
    assert other.weights_hash == captioner.weights_hash and other.id == str(folder)
    assert captioner.weights_hash == weights_hash(other.model)


def test_same_seed_same_caption_whatever_the_batch(captioner, frames):
    seeds = [[100 + i] for i in range(6)]
    full = captioner.caption(frames, seeds=seeds, sampling=SAMPLING)
    part = captioner.caption(frames[3:5], seeds=seeds[3:5], sampling=SAMPLING)
    assert part == full[3:5]
    assert all(c[0] for c in full)


def test_different_seeds_give_different_captions(captioner, frames):
    a = captioner.caption(frames, seeds=[[i] for i in range(6)], sampling=SAMPLING)
    b = captioner.caption(frames, seeds=[[1000 + i] for i in range(6)], sampling=SAMPLING)
    assert sum(x != y for x, y in zip(a, b)) >= 4


def test_beam_search_ignores_seeds(captioner, frames):
    beam = SamplingConfig(method="beam", num_beams=2, max_new_tokens=6)
    assert captioner.caption(frames[:2], seeds=[[1], [2]], sampling=beam) == \
        captioner.caption(frames[:2], seeds=[[3], [4]], sampling=beam)


def test_top_p_near_zero_is_greedy(captioner, frames):
    nucleus = SamplingConfig(top_p=1e-6, max_new_tokens=6)
    greedy = SamplingConfig(method="greedy", max_new_tokens=6)
    assert captioner.caption(frames[:3], seeds=[[1], [2], [3]], sampling=nucleus) == \
        captioner.caption(frames[:3], seeds=[[7], [8], [9]], sampling=greedy)


def test_several_captions_per_frame(captioner, frames):
    two = SamplingConfig(captions_per_frame=2, max_new_tokens=10)
    out = captioner.caption(frames[:2], seeds=[[1, 2], [3, 4]], sampling=two)
    assert [len(c) for c in out] == [2, 2]
    assert out[1][0] == captioner.caption(frames[1:2], seeds=[[3]], sampling=SAMPLING)[0][0]


def test_seed_count_mismatch_is_an_error(captioner, frames):
    with pytest.raises(ValueError, match="need 1 seeds for each of 2 frames"):
        captioner.caption(frames[:2], seeds=[[1]], sampling=SAMPLING)


def test_input_size_other_than_native_interpolates_position_embeddings(captioner):
    big = torch.zeros((1, 96, 96, 3), dtype=torch.uint8)
    assert captioner.model.config.vision_config.image_size == 64
    assert len(captioner.caption(big, seeds=[[0]], sampling=SAMPLING)[0]) == 1
