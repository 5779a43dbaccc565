import sys
import textwrap

import pytest

from fcap.cli import main
from fcap.plugins import PluginError, load_entry_point_plugins, load_plugin
from registry import GATES, TASKS


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_plugin_by_file_path_is_imported_once(tmp_path):
    f = write(tmp_path / "my_plugin_file.py", """
        from registry import TASKS
        COUNT = globals().get("COUNT", 0) + 1
        @TASKS.register("from_file_task")
        def run(cfg, ctx):
            '''A task from a file plugin.'''
    """)
    name = load_plugin(str(f))
    assert load_plugin(str(f)) == name
    assert sys.modules[name].COUNT == 1 and "from_file_task" in TASKS


def test_plugin_by_module_name(tmp_path, monkeypatch):
    write(tmp_path / "my_plugin_mod.py", """
        from registry import TASKS
        @TASKS.register("from_module_task")
        def run(cfg, ctx):
            '''A task from a module plugin.'''
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_plugin("my_plugin_mod") == "my_plugin_mod"
    assert "from_module_task" in TASKS


def test_plugin_failure_names_plugin_and_cause(tmp_path, capsys):
    bad = write(tmp_path / "broken_plugin.py", "import not_a_real_module_xyz\n")
    with pytest.raises(PluginError) as err:
        load_plugin(str(bad))
    assert "plugin '" in str(err.value) and "broken_plugin.py" in str(err.value)
    assert "ModuleNotFoundError: No module named 'not_a_real_module_xyz'" in str(err.value)
    with pytest.raises(PluginError, match="plugin 'no_such_plugin_mod' failed to import"):
        load_plugin("no_such_plugin_mod")
    assert main(["--list", "task", "--plugin", str(bad)]) == 2
    assert "broken_plugin.py" in capsys.readouterr().err


def test_plugin_from_yaml_and_entry_point(tmp_path, monkeypatch, in_tmp):
    pkg = tmp_path / "site"
    pkg.mkdir()
    write(pkg / "ep_plugin_pkg.py", """
        from registry import TASKS
        @TASKS.register("from_entry_point")
        def run(cfg, ctx):
            '''Registered through the fcap.plugins entry point.'''
            (ctx.run_dir / "ep.txt").write_text("ok")
    """)
    dist = pkg / "ep_plugin_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[fcap.plugins]\nmine = ep_plugin_pkg\n")
    monkeypatch.syspath_prepend(str(pkg))
    assert "mine" in load_entry_point_plugins()
    assert "from_entry_point" in TASKS
    write(tmp_path / "yaml_plugin.py", """
        from registry import TASKS
        @TASKS.register("from_yaml_plugin")
        def run(cfg, ctx):
            '''Registered by a plugin named in YAML.'''
            (ctx.run_dir / "yaml.txt").write_text("ok")
    """)
    exp = write(tmp_path / "exp.yaml", """
        name: plug
        plugins: [yaml_plugin.py]
        stages:
          one: {task: from_yaml_plugin}
          two: {task: from_entry_point}
    """)
    assert main([str(exp)]) == 0
    assert (in_tmp / "runs/plug/default/one/yaml.txt").read_text() == "ok"
    assert (in_tmp / "runs/plug/default/two/ep.txt").read_text() == "ok"


def test_list_prints_components_with_options(capsys, fix):
    assert main(["--list", "optimizer", "--plugin", str(fix / "plugins" / "toy_tasks.py")]) == 0
    out = capsys.readouterr().out
    assert "[optimizer]" in out and "toy_sgd" in out and "Plain SGD, for config tests." in out
    assert "lr: float = 0.001" in out
    assert main(["--list", "gatez"]) == 2
    assert "did you mean 'gate'" in capsys.readouterr().err
    assert isinstance(GATES.names(), list)
