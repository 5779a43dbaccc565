import pytest

from fcap.train import distributed


@pytest.fixture(scope="session")
def dist_info():
    """One 1-process gloo group for all single-process trainer tests."""
    info = distributed.setup()
    yield info
    distributed.teardown(info)
