from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def real_prices_dir() -> Path:
    """The shared real adjusted closes (read in place, never copied into the repo)."""
    path = REPO_ROOT.parent / "shared" / "data" / "real-prices"
    if not path.is_dir():
        pytest.skip(f"real prices not found at {path}")
    return path
