import pytest


@pytest.fixture(autouse=True)
def table1_on_one_thread(one_thread):
    """Every Table 1 test trains on one thread."""
