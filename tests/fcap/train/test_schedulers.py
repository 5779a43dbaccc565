"""Every built-in lr schedule, step by step, against its formula written out here.

The formulas below are the curves fcap has always produced: a change to
``fcap/train/schedulers.py`` (e.g. delegating to transformers' schedule
functions) must keep every value at every step, including past ``total_steps``.
"""
import math

import pytest
import torch

from fcap.config import build_component
from registry import SCHEDULERS


def expected_factor(name: str, cfg: dict, step: int, total: int) -> float:
    """The lr multiplier of schedule ``name`` at optimizer step ``step`` (0-based)."""
    warmup = cfg.get("warmup_steps", 0)
    if warmup and step < warmup:
        return (step + 1) / warmup  # the first step already trains, at lr / warmup
    if name == "constant":
        return 1.0
    low = cfg.get("min_lr_ratio", 0.0)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))  # held at the end
    decay = 0.5 * (1 + math.cos(math.pi * progress)) if name == "warmup_cosine" else 1.0 - progress
    return low + (1 - low) * decay


CASES = [  # (name, options, total_steps)
    ("constant", {}, 10),
    ("constant", {"warmup_steps": 4}, 10),
    ("constant", {"warmup_steps": 1}, 1),
    ("warmup_cosine", {}, 12),
    ("warmup_cosine", {"warmup_steps": 3}, 12),
    ("warmup_cosine", {"warmup_steps": 2, "min_lr_ratio": 0.1}, 10),
    ("warmup_cosine", {"warmup_steps": 5, "min_lr_ratio": 0.25}, 5),  # warmup == steps
    ("warmup_cosine", {"warmup_steps": 1, "min_lr_ratio": 1.0}, 7),
    ("warmup_linear", {}, 9),
    ("warmup_linear", {"warmup_steps": 2}, 10),
    ("warmup_linear", {"warmup_steps": 3, "min_lr_ratio": 0.2}, 11),
    ("warmup_linear", {"warmup_steps": 0, "min_lr_ratio": 0.5}, 1),
]


def test_the_cases_cover_every_built_in_schedule():
    built_in = {e.name for e in SCHEDULERS if e.origin.startswith("fcap.train.schedulers:")}
    assert built_in == {name for name, _, _ in CASES}


@pytest.mark.parametrize("name, options, total", CASES)
def test_lr_at_every_step_follows_the_formula(name, options, total):
    peak = 3e-4
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=peak)
    sched = build_component(SCHEDULERS, {"name": name, **options}).build(opt, total_steps=total)
    got = []
    for _ in range(total + 3):  # a few steps past the end: the last value holds
        got.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    want = [peak * expected_factor(name, options, step, total) for step in range(total + 3)]
    assert got == pytest.approx(want, rel=1e-12, abs=0.0)


@pytest.mark.parametrize("name", ["warmup_cosine", "warmup_linear"])
def test_a_resumed_schedule_continues_the_same_curve(name):
    def make():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=1.0)
        block = {"name": name, "warmup_steps": 2, "min_lr_ratio": 0.1}
        return opt, build_component(SCHEDULERS, block).build(opt, total_steps=10)

    opt, sched = make()
    for _ in range(5):
        opt.step()
        sched.step()
    state = sched.state_dict()
    opt2, sched2 = make()
    sched2.load_state_dict(state)
    assert sched2.get_last_lr() == sched.get_last_lr()
    opt2.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(
        expected_factor(name, {"warmup_steps": 2, "min_lr_ratio": 0.1}, 6, 10), rel=1e-12)
