import registry
from registry import ALL, Registry


def test_every_kind_is_an_instance_with_a_contract():
    expected = {"TASKS", "DATA_SOURCES", "CROSS_ATTENTIONS", "GATES", "OPTIMIZERS",
                "SCHEDULERS", "METRICS", "LAUNCHERS", "MODELS"}
    for name in expected:
        reg = getattr(registry, name)
        assert isinstance(reg, Registry)
        assert "Contract" in reg.__doc__, name
    assert {id(r) for r in ALL.values()} == {id(getattr(registry, n)) for n in expected}


def test_builtins_register_into_the_registries():
    from fcap.components import load_builtins

    load_builtins()
    assert "local" in registry.LAUNCHERS
