"""Task options are validated like every fcap config: all problems, named, at once."""
import pytest

import fcap.pseudolabel  # noqa: F401  (registers 'blip')
from fcap.config import ConfigError, from_dict
from fcap.pseudolabel.config import PseudolabelConfig


def test_defaults_are_the_paper_settings():
    cfg = from_dict(PseudolabelConfig, {"videos": "/data/howto100m"})
    assert (cfg.clips.seconds, cfg.clips.frames, cfg.frame_size) == (8.0, "center", 320)
    assert (cfg.sampling.method, cfg.sampling.top_p) == ("nucleus", 0.9)
    assert cfg.captioner.name == "blip"
    assert cfg.captioner.cfg.source == "Salesforce/blip-image-captioning-large"


def test_every_mistake_is_reported_with_its_key():
    with pytest.raises(ConfigError) as err:
        from_dict(PseudolabelConfig, {"videos": "/v", "clip_seconds": 8, "clips": {"frames": "centre"},
                                      "sampling": {"top_p": 1.5}, "captioner": {"name": "blp"}},
                  source="exp.yaml")
    text = str(err.value)
    assert "4 problems" in text
    assert "exp.yaml: clip_seconds: unknown key 'clip_seconds'" in text
    assert "clips.frames: 'centre' is not allowed; did you mean 'center'?" in text
    assert "top_p must be in (0, 1], got 1.5" in text
    assert "captioner.name: no model 'blp' in registry 'model'; did you mean 'blip'?" in text


def test_shard_index_must_fit_num_shards():
    with pytest.raises(ConfigError, match=r"shard_index must be in \[0, num_shards=4\), got 4"):
        from_dict(PseudolabelConfig, {"videos": "/v", "num_shards": 4, "shard_index": 4})


def test_several_captions_need_sampling():
    with pytest.raises(ConfigError, match="captions_per_frame > 1 needs method 'nucleus'"):
        from_dict(PseudolabelConfig, {"videos": "/v", "sampling": {"method": "beam", "captions_per_frame": 2}})


def test_videos_or_shapes_exactly_one():
    with pytest.raises(ConfigError, match="set exactly one of 'videos' .* and 'shapes'"):
        from_dict(PseudolabelConfig, {})
    with pytest.raises(ConfigError, match="set exactly one of 'videos'"):
        from_dict(PseudolabelConfig, {"videos": "/v", "shapes": {"root": "/w"}})
