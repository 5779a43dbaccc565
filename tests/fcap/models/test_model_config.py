"""ModelConfig: the model: block validates through the one config path."""
import pytest

from fcap.config import ConfigError
from fcap.config.schema import from_dict, to_dict
from fcap.models import ModelConfig


def test_defaults_are_the_paper_configuration():
    cfg = ModelConfig()
    assert cfg.lm.name == "opt" and cfg.lm.cfg.source == "facebook/opt-1.3b"
    assert cfg.visual.name == "timesformer"
    assert cfg.adapters.layers == [12, 14, 16, 18, 20, 22]
    assert cfg.adapters.attention.name == "separable" and cfg.adapters.attention.cfg.heads == 16
    assert cfg.adapters.gate.name == "vector" and cfg.adapters.gate.cfg.init == 1.0
    assert cfg.adapters.ffn_mult == 4


def test_yaml_shape_round_trips():
    data = {"lm": {"name": "opt", "source": "tiny"}, "visual": {"name": "timesformer", "source": "tiny"},
            "adapters": {"layers": [1, 3], "attention": {"name": "perceiver", "num_latents": 8},
                         "gate": {"name": "scalar", "init": 0.0}, "ffn_mult": 2}}
    cfg = from_dict(ModelConfig, data)
    again = from_dict(ModelConfig, to_dict(cfg))
    assert again == cfg and again.adapters.attention.cfg.num_latents == 8


def test_problems_are_collected_and_named():
    with pytest.raises(ConfigError) as err:
        from_dict(ModelConfig, {"adapters": {"attention": {"name": "separabel"}, "gate": {"name": "vector",
                                             "inti": 1.0}}}, source="exp.yaml")
    msg = str(err.value)
    assert "exp.yaml" in msg and "adapters.attention.name" in msg and "did you mean 'separable'" in msg
    assert "adapters.gate.inti" in msg and "did you mean 'init'" in msg


def test_bad_layer_lists_are_refused():
    with pytest.raises(ConfigError, match=r"layers: must be increasing, got \[3, 1\]"):
        from_dict(ModelConfig, {"adapters": {"layers": [3, 1]}})
    with pytest.raises(ConfigError, match="layers: duplicate index"):
        from_dict(ModelConfig, {"adapters": {"layers": [2, 2]}})
