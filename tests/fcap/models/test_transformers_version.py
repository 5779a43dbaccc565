"""The declared transformers range is the one fcap runs on, and anything else fails loudly."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fcap.models import TRANSFORMERS_REQUIREMENT, check_transformers

REPO = Path(__file__).resolve().parents[3]


def test_setup_py_declares_the_range_fcap_models_checks():
    declared = re.findall(r'"(transformers[^"]*)"', (REPO / "setup.py").read_text())
    assert declared == [TRANSFORMERS_REQUIREMENT] == ["transformers>=5.4,<6"]


@pytest.mark.parametrize("version", ["5.4.0", "5.17.0", "5.24.0", "5.30.0.dev0"])
def test_supported_versions_pass(version):
    check_transformers(version)


@pytest.mark.parametrize("version", ["5.0.0", "5.3.0", "4.57.6", "6.0.0"])
def test_unsupported_versions_name_installed_and_required(version):
    with pytest.raises(ImportError) as err:
        check_transformers(version)
    msg = str(err.value)
    assert msg.startswith(f"fcap.models needs transformers>=5.4,<6, but transformers {version} "
                          "is installed (")
    assert msg.endswith("install a supported version: pip install 'transformers>=5.4,<6'")


def test_importing_fcap_models_with_transformers_5_0_fails_at_import(tmp_path):
    # a stand-in transformers 5.0.0 first on the path, as `pip install --target` would put it
    (tmp_path / "transformers").mkdir()
    (tmp_path / "transformers" / "__init__.py").write_text('__version__ = "5.0.0"\n')
    info = tmp_path / "transformers-5.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: transformers\nVersion: 5.0.0\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    done = subprocess.run([sys.executable, "-c", "import fcap.models"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert (f"ImportError: fcap.models needs transformers>=5.4,<6, but transformers 5.0.0 is "
            f"installed ({tmp_path / 'transformers' / '__init__.py'})") in done.stderr
