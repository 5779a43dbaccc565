import os
from pathlib import Path

import pytest

FIX = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def fix():
    return FIX


@pytest.fixture
def in_tmp(tmp_path):
    """Run from a temporary directory so output_root lands there."""
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)
