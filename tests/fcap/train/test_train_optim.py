import math

import pytest
import torch

from fcap.config import ConfigError, build_component, from_dict
from fcap.train.config import TrainConfig
from fcap.train.engine import deepspeed_config
from registry import OPTIMIZERS, SCHEDULERS


def params():
    return [torch.nn.Parameter(torch.zeros(3))]


def test_adamw_from_yaml_block_carries_the_papers_beta2():
    opt = build_component(OPTIMIZERS, {"name": "adamw", "lr": "7e-3", "betas": [0.9, 0.95]}).build(params())
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.defaults["lr"] == 7e-3 and opt.defaults["betas"] == (0.9, 0.95)


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)])
def test_other_optimizers(name, cls):
    assert type(build_component(OPTIMIZERS, {"name": name}).build(params())) is cls


def test_bad_optimizer_options_name_the_key():
    with pytest.raises(ConfigError) as err:
        build_component(OPTIMIZERS, {"name": "adamw", "lr": 0, "betas": [0.9, 1.5]}, key="optimizer")
    assert "lr must be > 0, got 0.0" in str(err.value)
    with pytest.raises(ConfigError) as err:
        build_component(OPTIMIZERS, {"name": "adamw", "beta2": 0.95}, key="optimizer")
    assert "optimizer.beta2: unknown key 'beta2'; did you mean 'betas'?" in str(err.value)
    with pytest.raises(ConfigError, match="no optimizer 'sgdd'.*did you mean 'sgd'\? known: adam, adamw, sgd"):
        build_component(OPTIMIZERS, {"name": "sgdd"})


def lrs(block, total=10):
    opt = torch.optim.SGD(params(), lr=1.0)
    sched = build_component(SCHEDULERS, block).build(opt, total_steps=total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_schedules():
    assert lrs({"name": "constant"}) == [1.0] * 10
    assert lrs({"name": "constant", "warmup_steps": 4})[:5] == [0.25, 0.5, 0.75, 1.0, 1.0]
    cos = lrs({"name": "warmup_cosine", "warmup_steps": 2, "min_lr_ratio": 0.1})
    assert cos[:3] == [0.5, 1.0, 1.0]
    assert cos[6] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 4 / 8)))
    lin = lrs({"name": "warmup_linear", "warmup_steps": 2})
    assert lin[2:] == pytest.approx([1 - k / 8 for k in range(8)])


def test_warmup_longer_than_stage_is_refused():
    with pytest.raises(ValueError, match="warmup_steps=20 exceeds the stage's steps=10"):
        lrs({"name": "warmup_cosine", "warmup_steps": 20})


def test_train_config_validation_names_fields():
    with pytest.raises(ConfigError) as err:
        from_dict(TrainConfig, {"zero_stage": 3, "steps": 0}, key="train")
    text = str(err.value)
    assert "train.zero_stage: 3 is not allowed" in text and "allowed: 1, 2" in text
    with pytest.raises(ConfigError, match="steps must be >= 1, got 0"):
        from_dict(TrainConfig, {"steps": 0}, key="train")


def test_deepspeed_config_follows_train_block():
    cfg = TrainConfig(batch_size=4, grad_accum=3, clip_grad=0.5, precision="bf16", zero_stage=1)
    ds = deepspeed_config(cfg, world_size=2)
    assert ds["train_batch_size"] == 24 and ds["gradient_accumulation_steps"] == 3
    assert ds["zero_optimization"] == {"stage": 1} and ds["gradient_clipping"] == 0.5
    assert ds["bf16"]["enabled"] and ds["bf16"]["check_grad_overflow"]
    assert "optimizer" not in ds  # torch optimizers, never DeepSpeed's fused ones
