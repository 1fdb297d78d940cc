"""Shared fixtures: the real reference data folder and small generated archives."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "real-data"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared folder of real Sentinel-2 files; tests using it skip when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip("../shared/real-data is not beside this checkout")
    return REAL_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep catalogue caches out of the user's home during tests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
