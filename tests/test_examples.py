"""The offline examples run end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SRC = Path(__file__).resolve().parents[1] / "src"


def test_quickstart_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), str(tmp_path)],
        capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(SRC), "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "rgb.png").exists() and (tmp_path / "budapest.zarr").exists()
    assert "mean NDVI per date" in result.stdout
