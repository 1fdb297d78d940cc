"""Which layer may import which (see ARCHITECTURE.md), checked.

- Planning is pure: its modules import with rasterio, dask, xarray and zarr made
  unimportable, so it runs (and is tested) without any IO or graph library.
- Only the readers and writers import rasterio.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sentinel_cube"

#: The pure layer: geometry, bands, radiometry rules, product metadata, planning.
PURE = (
    "sentinel_cube.exceptions",
    "sentinel_cube.bands",
    "sentinel_cube.grid",
    "sentinel_cube.mgrs",
    "sentinel_cube.aoi",
    "sentinel_cube.schema",
    "sentinel_cube._radiometry",
    "sentinel_cube._source",
    "sentinel_cube.safe",
    "sentinel_cube.stac",
    "sentinel_cube._plan",
    "sentinel_cube._warp",
    "sentinel_cube._cloud",
)
#: Libraries the pure layer must not need.
HEAVY = ("rasterio", "dask", "distributed", "xarray", "rioxarray", "zarr")

#: Modules that may import rasterio: the pixel reader, the band-header reader, the
#: writers (GeoTIFF/PNG export, the store's CRS check), rasterisation for clip, the
#: benchmark's raw decode (the decode limit of ``sentinel-cube bench``), and the
#: synthetic archive generator (it writes JP2 files).
RASTERIO_ALLOWED = {
    "_read.py",
    "_tiles.py",
    "safe/_georef.py",
    "export.py",
    "store.py",
    "ops/_clip.py",
    "bench/_decode.py",
}
RASTERIO_ALLOWED_FOLDERS = ("testing/",)


def test_planning_imports_without_io_or_graph_libraries():
    code = textwrap.dedent(
        f"""
        import importlib, importlib.abc, sys, types

        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in {HEAVY!r}:
                    raise ImportError(f"the pure layer imported {{name}}")

        sys.meta_path.insert(0, Refuse())
        # the package's __init__ wires every layer: load the modules without it
        package = types.ModuleType("sentinel_cube")
        package.__path__ = [{str(PACKAGE)!r}]
        sys.modules["sentinel_cube"] = package
        for name in {PURE!r}:
            importlib.import_module(name)
        print("imported", len({PURE!r}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"imported {len(PURE)}" in done.stdout


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_readers_and_writers_import_rasterio():
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "rasterio" in _imports(path)
    }
    allowed = {
        name
        for name in importers
        if name in RASTERIO_ALLOWED or name.startswith(RASTERIO_ALLOWED_FOLDERS)
    }
    assert importers == allowed, f"rasterio imported by {sorted(importers - allowed)}"
    assert "_read.py" in importers  # the check sees imports at all
