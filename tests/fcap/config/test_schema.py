from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from fcap.config import ConfigError, component, from_dict, to_dict
from registry import Registry

KINDS = Registry("widget")


@dataclass(frozen=True)
class RoundOpts:
    radius: float = 1.0

    def __post_init__(self):
        if self.radius <= 0:
            raise ValueError(f"radius must be > 0, got {self.radius}")


@KINDS.register("round", config=RoundOpts)
class Round:
    """A round widget."""


@KINDS.register("plain")
class Plain:
    """No options."""


@dataclass(frozen=True)
class Inner:
    depth: int = 2


@dataclass(frozen=True)
class Outer:
    count: int
    rate: float = 0.1
    on: bool = False
    tags: tuple[str, ...] = ()
    label: Optional[str] = None
    mode: Literal["fast", "slow"] = "fast"
    inner: Inner = field(default_factory=Inner)
    widget: object = component(KINDS, "round")
    table: dict[str, int] = field(default_factory=dict)


def test_defaults_and_round_trip():
    cfg = from_dict(Outer, {"count": 1})
    assert cfg.widget.name == "round" and cfg.widget.cfg == RoundOpts()
    data = to_dict(cfg)
    assert data["widget"] == {"name": "round", "radius": 1.0}
    assert from_dict(Outer, data) == cfg


def test_all_value_types():
    cfg = from_dict(Outer, {"count": 3, "rate": "1e-3", "on": True, "tags": ["a", "b"],
                            "label": None, "mode": "slow", "inner": {"depth": 5},
                            "widget": {"name": "round", "radius": 2}, "table": {"x": 1}})
    assert cfg.rate == 0.001 and cfg.on is True and cfg.tags == ("a", "b")
    assert cfg.inner.depth == 5 and cfg.widget.cfg.radius == 2.0 and cfg.table == {"x": 1}
    assert from_dict(Outer, {"count": 1, "widget": "plain"}).widget.name == "plain"


def test_every_problem_is_collected_with_keys():
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, {"cont": 1, "rate": "fast", "on": "yes", "tags": [1], "mode": "slwo",
                          "inner": {"deph": 1}, "widget": {"name": "rond"}}, source="f.yaml")
    text = str(err.value)
    assert text.startswith("invalid configuration: 8 problems")
    for line in [
        "f.yaml: cont: unknown key 'cont'; did you mean 'count'?",
        "f.yaml: count: missing required key 'count' (int)",
        "f.yaml: rate: expected float, got str 'fast'",
        "f.yaml: on: expected bool (true/false), got str 'yes'",
        "f.yaml: tags[0]: expected str, got int 1",
        "f.yaml: mode: 'slwo' is not allowed; did you mean 'slow'? allowed: 'fast', 'slow'",
        "f.yaml: inner.deph: unknown key 'deph'; did you mean 'depth'? allowed keys: depth=2",
        "f.yaml: widget.name: no widget 'rond' in registry 'widget'; did you mean 'round'? "
        "known: plain, round",
    ]:
        assert line in text, line


def test_post_init_invariant_and_component_without_options():
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, {"count": 1, "widget": {"name": "round", "radius": -1}})
    assert "widget.radius: RoundOpts: radius must be > 0, got -1.0" in str(err.value)
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, {"count": 1, "widget": {"name": "plain", "size": 3}})
    assert "widget.size: widget 'plain' takes no options" in str(err.value)


def test_bool_is_not_an_int_and_int_is_a_float():
    with pytest.raises(ConfigError, match="count: expected int, got bool True"):
        from_dict(Outer, {"count": True})
    assert from_dict(Outer, {"count": 1, "rate": 2}).rate == 2.0


def test_an_option_left_by_a_switched_component_says_who_switched_it():
    # `widget.name=plain` on the command line over a file's {name: round, radius: 2}
    sources = {"widget.name": "command line", "widget.radius": "f.yaml"}
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, {"count": 1, "widget": {"name": "plain", "radius": 2}},
                  source_of=lambda k: sources.get(k, "f.yaml"))
    assert ("f.yaml: widget.radius: widget 'plain' takes no options (command line set "
            "'widget.name: plain', which keeps the options given for the previous widget; to "
            "replace the whole block, set widget={name: plain, ...})") in str(err.value)
    # one source for both: a plain unknown key, no story about a switch
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, {"count": 1, "widget": {"name": "round", "size": 2}}, source="f.yaml")
    assert str(err.value).endswith("unknown key 'size'; allowed keys: radius=1.0")
    # a typo on the command line under a file's name: no widget takes it, so no story either
    sources = {"widget.name": "f.yaml", "widget.radiuss": "command line"}
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, {"count": 1, "widget": {"name": "round", "radiuss": 2}},
                  source_of=lambda k: sources.get(k, "f.yaml"))
    assert str(err.value).endswith("unknown key 'radiuss'; did you mean 'radius'? allowed keys: "
                                   "radius=1.0")


def test_another_components_option_without_a_name_says_the_default_was_used():
    gadgets = Registry("gadget")

    @dataclass(frozen=True)
    class Small:
        wheels: int = 3

    gadgets.register("big")(Round)
    gadgets.register("small", config=Small)(Plain)

    @dataclass(frozen=True)
    class Holder:
        gadget: object = component(gadgets, "big")

    # `gadget.wheels=4` alone: the options of 'small' given to the default 'big'
    with pytest.raises(ConfigError) as err:
        from_dict(Holder, {"gadget": {"wheels": 4}}, source="command line")
    assert str(err.value).endswith(
        "gadget.wheels: gadget 'big' takes no options (gadget.name is not set, so the gadget is "
        "the default, 'big'; for another gadget's options, name it in the whole block: "
        "gadget={name: NAME, ...})")
    assert from_dict(Holder, {"gadget": {"name": "small", "wheels": 4}}).gadget.cfg.wheels == 4


def test_run_options_are_the_fields_declared_so():
    from dataclasses import dataclass

    from fcap.config import run_option, run_options

    @dataclass(frozen=True)
    class Inner:
        steps: int = 1
        log_every: int = run_option(10)

    @dataclass(frozen=True)
    class Cfg:
        size: int = 3
        workers: int = run_option(2)
        inner: Inner = field(default_factory=Inner)
        maybe: Optional[Inner] = None

    assert run_options(Cfg) == {"workers", "inner.log_every", "maybe.log_every"}
    assert Cfg().workers == 2 and run_options(None) == frozenset()
