"""Visual feature cache: write once, read back equal, refuse anything that does not match."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from data_layouts import MEAN, STD, loader_kwargs, write_msrvtt
from fcap.config.schema import build_component
from fcap.data import DataEnv, FeatureCacheError, LoaderSpec, build_loader, extract_features
from registry import DATA_SOURCES

IDENTITY = {"family": "tiny-test-encoder", "dim": 16, "revision": "1"}


class TinyEncoder(nn.Module):
    """(b, t, 3, H, W) -> (b, t, s, d) with 8x8 patches."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.patch = nn.Conv2d(3, 16, kernel_size=8, stride=8)

    def forward(self, pixel_values, frame_mask):
        b, t = pixel_values.shape[:2]
        x = self.patch(pixel_values.flatten(0, 1))  # (b*t, d, h, w)
        return x.flatten(2).transpose(1, 2).reshape(b, t, -1, 16)


def spec(split="val", **kw):
    base = dict(split=split, train=False, batch_size=4, num_workers=0, image_size=32, mean=MEAN,
                std=STD, num_frames=4)
    base.update(kw)
    return LoaderSpec(**base)


def source(root, features=None, name="msrvtt", **options):
    block = {"name": name, "root": root, **options}
    if features:
        block["features"] = str(features)
    return build_component(DATA_SOURCES, block)


@pytest.fixture(scope="module")
def encoder():
    return TinyEncoder().eval()


def test_features_read_back_equal_the_encoders_output(shapes_roots, tmp_path, encoder):
    env = DataEnv()
    summary = extract_features(source(shapes_roots["msrvtt"]).build(env=env), out_dir=tmp_path,
                               encode=encoder, encoder=IDENTITY, spec=spec(), shard_rows=4)
    assert summary["items"] == 6 and summary["shards"] == 2 and summary["shape"] == [4, 16, 16]
    kw = loader_kwargs(train=False, split="val", batch_size=6)
    cached = next(iter(build_loader(source(shapes_roots["msrvtt"], tmp_path), env=env,
                                    encoder=IDENTITY, **kw)))
    pixels = next(iter(build_loader(source(shapes_roots["msrvtt"]), env=env, **kw)))
    assert "pixel_values" not in cached
    assert cached["ids"] == pixels["ids"]
    with torch.no_grad():
        expected = encoder(pixels["pixel_values"], pixels["frame_mask"])
    assert cached["visual_features"].shape == (6, 4, 16, 16)
    torch.testing.assert_close(cached["visual_features"], expected.half().float(),
                               atol=1e-3, rtol=1e-3)
    assert torch.equal(cached["frame_mask"], pixels["frame_mask"])


def test_training_items_share_their_videos_features(shapes_roots, tmp_path, encoder):
    env = DataEnv()
    extract_features(source(shapes_roots["msrvtt"]).build(env=env), out_dir=tmp_path,
                     encode=encoder, encoder=IDENTITY, spec=spec(split="train"))
    index = json.loads((tmp_path / "index.json").read_text())
    assert len(index["items"]) == 24  # one row per video, not per caption
    loader = build_loader(source(shapes_roots["msrvtt"], tmp_path), env=env, encoder=IDENTITY,
                          **loader_kwargs(batch_size=8))
    batch = next(iter(loader))
    assert batch["visual_features"].shape == (8, 4, 16, 16)


@pytest.mark.parametrize("change, message", [
    ({"num_frames": 8}, "frames: cache has 4, this run wants 8"),
    ({"image_size": 64}, "image_size: cache has 32, this run wants 64"),
    ({"encoder": {**IDENTITY, "revision": "2"}}, "encoder: cache has"),
    ({"mean": (0.5, 0.5, 0.5)}, "mean: cache has [0.485, 0.456, 0.406]"),
])
def test_cache_made_with_other_settings_is_refused(shapes_roots, tmp_path, encoder, change,
                                                   message):
    env = DataEnv()
    extract_features(source(shapes_roots["msrvtt"]).build(env=env), out_dir=tmp_path,
                     encode=encoder, encoder=IDENTITY, spec=spec())
    kw = loader_kwargs(train=False, split="val")
    kw.update({k: v for k, v in change.items() if k != "encoder"})
    with pytest.raises(FeatureCacheError) as info:
        build_loader(source(shapes_roots["msrvtt"], tmp_path), env=env,
                     encoder=change.get("encoder", IDENTITY), **kw)
    assert "was made with other settings and cannot be used" in str(info.value)
    assert message in str(info.value)


def test_stale_cache_is_refused(tmp_path, shapes_roots, encoder):
    videos = {f"video{n}": f"{shapes_roots['msrvtt']}/videos/all/video{n}.mp4" for n in range(3)}
    root = write_msrvtt(tmp_path / "data", videos)
    env = DataEnv()
    extract_features(source(str(root)).build(env=env), out_dir=tmp_path / "cache",
                     encode=encoder, encoder=IDENTITY, spec=spec(split="train"))
    videos["video3"] = f"{shapes_roots['msrvtt']}/videos/all/video3.mp4"
    write_msrvtt(root, videos)  # the annotations gained a video
    with pytest.raises(FeatureCacheError, match=r"is stale: 2 of 8 items of the source are not "
                                                r"in it \(first: video3, video3\)"):
        build_loader(source(str(root), tmp_path / "cache"), env=env, encoder=IDENTITY,
                     **loader_kwargs())


def test_unchecked_incomplete_or_absent_caches_are_refused(shapes_roots, tmp_path):
    env = DataEnv()
    kw = loader_kwargs(train=False, split="val")
    with pytest.raises(FeatureCacheError, match=r"no encoder identity .* refusing to use it"):
        build_loader(source(shapes_roots["msrvtt"], tmp_path), env=env, **kw)
    with pytest.raises(FeatureCacheError, match=r"no index.json \(missing or extraction did "
                                                r"not finish\)"):
        build_loader(source(shapes_roots["msrvtt"], tmp_path), env=env, encoder=IDENTITY, **kw)


def test_unreadable_videos_stay_skipped_when_read_from_cache(tmp_path, shapes_roots, encoder):
    videos = {f"video{n}": f"{shapes_roots['msrvtt']}/videos/all/video{n}.mp4" for n in range(5)}
    videos["video5"] = b""  # zero-byte
    root = write_msrvtt(tmp_path / "data", videos, captions_per_video=1)
    env = DataEnv(max_skip_fraction=0.5)
    summary = extract_features(source(str(root)).build(env=env), out_dir=tmp_path / "cache",
                               encode=encoder, encoder=IDENTITY, spec=spec(split="train"))
    assert (summary["items"], summary["skipped"]) == (5, 1)
    loader = build_loader(source(str(root), tmp_path / "cache"), env=env, encoder=IDENTITY,
                          **loader_kwargs(train=False, batch_size=6))
    batch = next(iter(loader))
    assert len(batch["ids"]) == 5
    assert batch["skipped"][0][1] == ("empty: zero-byte file (found when the features were "
                                      "extracted)")


def test_streamed_images_read_features_too(shapes_roots, tmp_path, encoder):
    env = DataEnv()
    laion = source(shapes_roots["laion"], name="laion")
    extract_features(laion, env=env, out_dir=tmp_path, encode=encoder,  # a config Component
                     encoder=IDENTITY, spec=spec(split=None, batch_size=16))
    kw = loader_kwargs(train=False, batch_size=12)
    cached = next(iter(build_loader(source(shapes_roots["laion"], tmp_path, name="laion"),
                                    env=env, encoder=IDENTITY, **kw)))
    pixels = next(iter(build_loader(laion, env=env, **kw)))
    assert cached["ids"] == pixels["ids"]
    with torch.no_grad():
        expected = encoder(pixels["pixel_values"], pixels["frame_mask"]).half().float()
    torch.testing.assert_close(cached["visual_features"], expected, atol=1e-3, rtol=1e-3)
