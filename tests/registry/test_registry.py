from dataclasses import dataclass

import pytest

from registry import Registry, UnknownComponentError


@dataclass(frozen=True)
class Opts:
    size: int = 3


def make():
    reg = Registry("gate")

    @reg.register("vector", config=Opts)
    class Vector:
        """Per-dimension gate."""

    @reg.register("scalar")
    class Scalar:
        """One number."""

    return reg, Vector, Scalar


def test_register_and_get():
    reg, Vector, _ = make()
    entry = reg.get("vector")
    assert entry.obj is Vector and entry.config is Opts
    assert entry.origin == f"{__name__}:make.<locals>.Vector"
    assert entry.doc == "Per-dimension gate."
    assert reg.names() == ["scalar", "vector"] and "vector" in reg and len(reg) == 2


def test_duplicate_name_names_both_origins():
    reg, _, _ = make()

    class Other:
        pass

    with pytest.raises(ValueError) as err:
        reg.register("vector")(Other)
    msg = str(err.value)
    assert "registry 'gate'" in msg and "'vector'" in msg
    assert f"{__name__}:make.<locals>.Vector" in msg
    assert f"{__name__}:test_duplicate_name_names_both_origins.<locals>.Other" in msg


def test_same_object_twice_is_not_an_error():
    reg, Vector, _ = make()
    reg.add("vector", Vector, config=Opts)
    assert reg.get("vector").obj is Vector


def test_unknown_name_suggests_and_lists():
    reg, _, _ = make()
    with pytest.raises(UnknownComponentError) as err:
        reg.get("vectr")
    assert str(err.value) == ("no gate 'vectr' in registry 'gate'; did you mean 'vector'? "
                              "known: scalar, vector")
    with pytest.raises(UnknownComponentError) as err:
        reg.get("zzz")
    assert str(err.value) == "no gate 'zzz' in registry 'gate'; known: scalar, vector"


def test_config_must_be_frozen_dataclass():
    reg = Registry("thing")

    @dataclass
    class Mutable:
        x: int = 1

    with pytest.raises(ValueError, match="must be a frozen dataclass"):
        reg.register("a", config=Mutable)
    with pytest.raises(ValueError, match="must be a dataclass type"):
        reg.register("b", config=dict)
    with pytest.raises(ValueError, match="non-empty string"):
        reg.register("")
