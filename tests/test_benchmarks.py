"""Run every asv benchmark once on tiny archives (scale 61), so the benchmarks never rot."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import math
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
MODULES = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
PREFIXES = ("time_", "timeraw_", "mem_", "peakmem_", "track_")


@pytest.fixture(scope="session")
def bench_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the whole session: archives are generated once."""
    return tmp_path_factory.mktemp("bench-cache")


@pytest.fixture
def bench_package(bench_cache: Path, monkeypatch: pytest.MonkeyPatch):
    """Set the scale and cache folder, then load ``benchmarks`` afresh from its folder."""
    monkeypatch.setenv("SENTINEL_CUBE_BENCH_SCALE", "61")
    monkeypatch.setenv("SENTINEL_CUBE_BENCH_DIR", str(bench_cache))
    stale = [name for name in sys.modules if name == "benchmarks" or name.startswith("benchmarks.")]
    for name in stale:
        monkeypatch.delitem(sys.modules, name)
    spec = importlib.util.spec_from_file_location(
        "benchmarks", BENCH_DIR / "__init__.py", submodule_search_locations=[str(BENCH_DIR)]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "benchmarks", package)
    spec.loader.exec_module(package)
    yield package
    for name in [n for n in sys.modules if n.startswith("benchmarks.")]:
        del sys.modules[name]


def _combinations(owner: Any) -> list[tuple[Any, ...]]:
    """Parameter combinations of a benchmark, as asv expands them."""
    params = getattr(owner, "params", [])
    if not params:
        return [()]
    if not isinstance(params[0], list | tuple):
        params = [params]
    return list(itertools.product(*params))


def _benchmarks(module: ModuleType) -> list[tuple[type | None, str]]:
    """(class or None, name) of every benchmark asv would find in ``module``."""
    found: list[tuple[type | None, str]] = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(obj) and obj.__module__ == module.__name__:
            found += [(obj, attr) for attr in dir(obj) if attr.startswith(PREFIXES)]
        elif inspect.isfunction(obj) and name.startswith(PREFIXES):
            found.append((None, name))
    return found


def _check_result(name: str, value: Any) -> None:
    if name.startswith("track_"):
        assert isinstance(value, int | float) and math.isfinite(value), (name, value)
        assert value > 0, f"{name} returned {value}"


def _run(module: ModuleType, owner: type | None, name: str, params: tuple[Any, ...]) -> None:
    instance = owner() if owner is not None else None
    target = module if instance is None else instance
    setup = getattr(target, "setup", None)
    teardown = getattr(target, "teardown", None)
    if setup is not None:
        setup(*params)
    try:
        value = getattr(target, name)(*params)
        if name.startswith("timeraw_"):  # the code asv would time in a fresh interpreter
            exec(compile(value, f"<{name}>", "exec"), {})
        _check_result(name, value)
    finally:
        if teardown is not None:
            teardown(*params)


@pytest.mark.slow
@pytest.mark.parametrize("module_name", MODULES)
def test_every_benchmark_runs_once(bench_package: ModuleType, module_name: str) -> None:
    module = importlib.import_module(f"benchmarks.{module_name}")
    benchmarks = _benchmarks(module)
    assert benchmarks, f"{module_name} defines no benchmark"
    timings = []
    for owner, name in benchmarks:
        for params in _combinations(owner if owner is not None else getattr(module, name)):
            label = f"{owner.__name__ + '.' if owner else ''}{name}{list(params) or ''}"
            started = time.perf_counter()
            _run(module, owner, name, params)
            timings.append((time.perf_counter() - started, label))
    slowest = ", ".join(f"{label} {seconds:.1f}s" for seconds, label in sorted(timings)[-3:])
    print(f"{module_name}: {len(timings)} runs; slowest: {slowest}")


def test_data_cache_is_keyed_and_reused(bench_package: ModuleType) -> None:
    data = importlib.import_module("benchmarks._data")
    assert data.bench_scale() == 61
    first = data.ingest_archive(dates=1)
    assert all(p.exists() for p in first.paths) and len(first.paths) == 2
    stamp = (first.root / "archive.json").stat().st_mtime_ns
    again = data.ingest_archive(dates=1)
    assert again.root == first.root  # same parameters: same folder, not regenerated
    assert (again.root / "archive.json").stat().st_mtime_ns == stamp
    assert data.ingest_archive(dates=2).root != first.root  # other parameters: other folder
    assert not list(first.root.parent.glob(".*"))  # no temporary folder left behind


def test_remote_io_script_measures_every_row(bench_package: ModuleType, tmp_path: Path) -> None:
    remote_io = importlib.import_module("benchmarks.remote_io")
    results = remote_io.run(61, tmp_path)
    rows = {"metadata folder", "metadata zip", "one chunk", "whole band", "whole band in zip",
            "store write", "store rerun"}  # fmt: skip
    assert rows <= set(results)
    assert results["metadata folder"]["requests"] == 2  # no listing, one GET per XML file
    assert results["store rerun"]["received"] < 0.01 * results["store write"]["received"]
    assert results["one chunk"]["needed"] > 0
    assert "| one chunk |" in remote_io.table(results)


def test_profile_ingest_accounts_for_the_cpu(bench_package: ModuleType, tmp_path: Path) -> None:
    profile = importlib.import_module("benchmarks.profile_ingest")
    result = profile.main(["--scale", "61", "--dates", "1", "--out", str(tmp_path / "p.json")])
    buckets = ["decode", "radiometry", "mosaic", "compress + write", "other"]
    assert sum(result[b] for b in buckets) == pytest.approx(result["total"])
    assert all(result[b] >= 0 for b in buckets[:4]) and result["decode"] > 0
    assert result["mpix"] > 0 and (tmp_path / "p.json").exists()


@pytest.mark.slow
def test_compare_stac_runs_once(bench_package: ModuleType, tmp_path: Path) -> None:
    """The STAC side-by-side runs end to end on a tiny archive; every method that can run
    here reads the same pixels as ``open_cube`` of the ``.SAFE`` folders."""
    from _stac_api import stac_api_available

    compare = importlib.import_module("benchmarks.compare_stac")
    report = compare.main(["--scale", "61", "--dates", "1", "--rounds", "1",
                           "--workdir", str(tmp_path)])  # fmt: skip
    methods = report["methods"]
    assert set(methods) == set(compare.METHODS)
    for name, summary in methods.items():
        needs_api = name.startswith("cube_") and name != "cube_safe"
        if needs_api and not stac_api_available():
            assert "errors" in summary  # open_cube does not take items yet (issue #12)
            continue
        assert "errors" not in summary, (name, summary.get("errors"))
        if name.startswith("odc_cog"):
            # odc-stac returns the files' DN, and Earth Search's COGs carry the offset in
            # their pixels: compare with the COG files' own DN, read with rasterio
            assert summary["dn_sum"] == _cog_dn_sum() > 0, name
            continue
        assert summary["dn_sum"] == methods["cube_safe"]["dn_sum"] > 0, name
    assert "| COG / JP2, odc-stac, HTTP |" in report["markdown"]


@pytest.mark.slow
def test_compare_ops_reads_the_store_and_reports_ratios(bench_package, monkeypatch) -> None:
    """The Zarr side of compare_ops runs end to end on a tiny archive (workers in
    subprocesses started from the repository root)."""
    compare = importlib.import_module("benchmarks.compare_ops")
    monkeypatch.chdir(BENCH_DIR.parent)
    report = compare.main(["--scale", "61", "--dates", "1", "--rounds", "1",
                           "--only", "zarr_max_dn,zarr_stretch_dn"])  # fmt: skip
    assert set(report["runs"]) == {"zarr_max_dn", "zarr_stretch_dn"}
    (row,) = report["ratios"]
    assert row.startswith("| stretch / max | dn | ")
    assert all(r["pixels"] > 0 and r["seconds"] > 0 for runs in report["runs"].values()
               for r in runs)  # fmt: skip


def _cog_dn_sum() -> int:
    """The sum of the DN of the benchmark's published COGs (bands B02, B03, B04, B08)."""
    import os

    import numpy as np
    import rasterio

    (trees,) = Path(os.environ["SENTINEL_CUBE_BENCH_DIR"]).rglob("*-stac-*")  # one archive
    total = 0
    for path in trees.rglob("*.tif"):
        if path.stem in ("B02", "B03", "B04", "B08"):
            with rasterio.open(path) as cog:
                total += int(cog.read().sum(dtype=np.int64))
    return total


@pytest.mark.slow
def test_compare_large_runs_every_method_once(bench_package: ModuleType, tmp_path: Path) -> None:
    """The large-AOI side by side (4 tiles in 2 UTM zones) runs every method once on a
    tiny archive; every store equals sentinel_cube's on the exact region, and the decode
    limit decodes every pixel of every band file."""
    import os

    import numpy as np
    import rasterio

    compare = importlib.import_module("benchmarks.compare_large")
    report = compare.main(["--scale", "61", "--dates", "2", "--rounds", "1",
                           "--workdir", str(tmp_path)])  # fmt: skip
    assert report is not None and report["complete"]
    methods, config = report["methods"], report["config"]
    ran = set(methods) | set(report["skipped"])
    assert ran == set(compare.METHODS)
    assert set(report["skipped"]) <= {"stackstac"}, report["skipped"]  # not a test dependency
    for name, summary in methods.items():
        assert "errors" not in summary, (name, summary.get("errors"))
        assert summary["seconds"] > 0 and summary["cpu_seconds"] > 0, name
    # one target CRS: zone 34 holds most of the union of 33TXN, 33TYN, 34TCT, 34TDT
    assert config["epsg"] == 32634 and config["products"] == 8
    assert config["shape"][:2] == [2, 4]
    # 610 m pixels: only 34TCT (the anchor) lies on the grid; 34TDT's corner is 100 km east
    assert config["aligned_tiles"] == ["34TCT"]
    expected = 0  # every pixel of every band file, counted with rasterio
    root = next(Path(os.environ["SENTINEL_CUBE_BENCH_DIR"]).glob("large-s61-*/"))
    for path in root.rglob("*_10m.jp2"):
        with rasterio.open(path) as band:
            expected += band.width * band.height
    assert len(list(root.rglob("*_10m.jp2"))) == 8 * 4
    assert methods["gdal"]["pixels"] == expected
    for name in ("odc_stac", "stackstac", "sentinel_cube_cluster"):
        if name not in methods:
            continue
        check = methods[name]["runs"][0]["check"]
        assert check["exact"] == round(config["exact_fraction"] * np.prod(config["shape"]))
        assert check["exact_valid"] > 0.3 * check["exact"]  # not only no-data pixels
        assert check["exact_equal"] == check["exact"], name
        assert methods[name]["other_equal_fraction"] > (0.999 if "cube" in name else 0.9), name
        assert methods[name]["layout"] == methods["sentinel_cube"]["layout"], name
    assert report["ratios"]["best_peer"] in ("odc_stac", "stackstac")
    assert "| decode limit: raw GDAL reads" in report["markdown"]


def test_compare_large_ratios_per_round(bench_package: ModuleType) -> None:
    """Per-round ratios pair each round's runs and take the best peer of each round and
    metric; the machine's drift (a slow round for every method) cancels."""
    large = importlib.import_module("benchmarks.compare_large")

    def runs(*pairs):
        return {"runs": [{"seconds": w, "cpu_seconds": c} for w, c in pairs]}

    summaries = {  # round 2 is twice as slow for everyone
        "sentinel_cube": runs((10, 18), (20, 36), (10, 18)),
        "gdal": runs((8, 16), (16, 32), (8, 16)),
        "odc_stac": runs((12, 20), (24, 40), (13, 19)),
        "stackstac": runs((11, 21), (26, 42), (12, 22)),
    }
    found = large._round_ratios(summaries)
    assert found["vs_decode_wall"] == pytest.approx(0.8)
    assert found["vs_decode_cpu"] == pytest.approx(16 / 18)
    # wall: best peers 11, 24, 12 -> 1.1, 1.2, 1.2; CPU: 20, 40, 19 -> 1.111, 1.111, 1.056
    assert found["vs_best_peer_wall"] == pytest.approx(1.2)
    assert found["vs_best_peer_cpu"] == pytest.approx(20 / 18)
    assert large._round_ratios({"sentinel_cube": runs((10, 18))}) == {}


def test_compare_large_grid_and_exact_region(bench_package: ModuleType) -> None:
    """The large comparison's grid and exact region at 100 m pixels, from tile geometry
    alone (MGRS corners and pyproj, no archive)."""
    from pyproj import Transformer
    from shapely.geometry import box, mapping

    from sentinel_cube.mgrs import TILE_EXTENT_M, tile_epsg, tile_origin

    grid_module = importlib.import_module("benchmarks._large_grid")
    products = []
    for tile in ("33TXN", "33TYN", "34TCT", "34TDT"):  # the order of sentinel_cube's mosaic
        x, y = tile_origin(tile)
        bounds = [x, y - TILE_EXTENT_M, x + TILE_EXTENT_M, y]
        to_lonlat = Transformer.from_crs(tile_epsg(tile), 4326, always_xy=True)
        lonlat = box(*to_lonlat.transform_bounds(*bounds))
        products.append({"tile": tile, "epsg": tile_epsg(tile), "bounds": bounds,
                         "resolution": 100.0, "geometry": mapping(lonlat)})  # fmt: skip
    epsg = grid_module.target_epsg(products)
    assert epsg == 32634  # 16.3-18 deg E lies in zone 33, 18-21.1 deg E in zone 34
    grid = grid_module.plan_grid(products, epsg)
    left, bottom, right, top = grid["bounds"]
    assert (left - 300_000) % 100 == 0 and (top - 5_300_040) % 100 == 0
    assert grid["shape"] == [round((top - bottom) / 100), round((right - left) / 100)]
    assert [t["tile"] for t in grid["tiles"] if t["aligned"]] == ["34TCT", "34TDT"]
    to_target = Transformer.from_crs(32633, 32634, always_xy=True)
    for corner in ((600_000, 5_300_040), (600_000, 5_190_240), (809_800, 5_190_240)):
        cx, cy = to_target.transform(*corner)  # zone 33 corners lie inside the grid
        assert left <= cx <= right and bottom <= cy <= top
    mask = grid_module.exact_mask(grid)

    def exact_at(x: float, y: float) -> bool:
        return bool(mask[int((top - y) // 100), int((x - left) // 100)])

    east_edge_33tyn, _ = to_target.transform(809_800, 5_245_000)  # about x = 353 km
    assert exact_at(450_000, 5_245_000)  # 34TDT alone
    assert exact_at(405_000, 5_245_000)  # 34TCT and 34TDT overlap: 34TCT, on the grid
    assert exact_at(east_edge_33tyn + 1_000, 5_245_000)  # 34TCT east of 33TYN
    assert not exact_at(east_edge_33tyn - 1_000, 5_245_000)  # 33TYN wins there (warped)
    assert not exact_at(east_edge_33tyn + 100, 5_245_000)  # near a warped edge
    west, _ = to_target.transform(650_000, 5_245_000)
    assert not exact_at(west, 5_245_000)  # 33TXN
