"""``sentinel-cube bench``: the decode limit's windows, a whole run on a local cluster
against the loopback S3 store, a run on a running scheduler, and the errors."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from click.testing import CliRunner
from pyproj import Transformer
from rasterio.warp import transform_bounds, transform_geom
from rasterio.windows import from_bounds
from shapely.geometry import box, mapping, shape

from _s3 import BUCKET
from sentinel_cube import open_cube, open_zarr, read_product
from sentinel_cube.bench import BandGrid, ChunkGrid, decode_tasks, window_of
from sentinel_cube.cli import main
from sentinel_cube.testing import BUDAPEST_TILES, ZONE_BOUNDARY_TILES, default_specs, make_archive

SCALE = 61
RES = 10 * SCALE
PHASES = {"plan", "decode", "ingest", "clip", "stretch", "aggregate", "scaling"}


def _archive(root: Path, tiles, dates=("2023-06-01",), bands=("B04",)) -> list[Path]:
    specs = default_specs(tiles=tiles, dates=dates, partial=None)
    return make_archive(root, specs, scale=SCALE, bands=list(bands))


@pytest.fixture(scope="module")
def budapest(tmp_path_factory) -> list[Path]:
    """Both Budapest tiles, two dates, the four 10 m bands, tiny."""
    root = tmp_path_factory.mktemp("bench-archive")
    return _archive(
        root, BUDAPEST_TILES, ("2023-06-01", "2023-06-06"), ("B02", "B03", "B04", "B08")
    )


# --------------------------------------------------------------- the decode windows


def _expected_reads(cube, aoi=None) -> dict[tuple[int, str, int, int], list[tuple]]:
    """Per (step, band, chunk): the windows, from the band files' own georeferencing
    (rasterio, GDAL's transformations), independently of the code under test."""
    crs = cube.rio.crs
    x_edges = np.cumsum((0, *cube.chunks[3]))
    y_edges = np.cumsum((0, *cube.chunks[2]))
    t = cube.rio.transform()
    area = None if aoi is None else shape(transform_geom("EPSG:4326", crs, mapping(aoi)))
    found: dict[tuple[int, str, int, int], list[tuple]] = {}
    for step, text in enumerate(cube.product_path.values):
        for path in str(text).split("\n"):
            product = read_product(path, require_bands=None)
            for band in cube.band.values:
                with rasterio.open(product.band(str(band)).path) as ds:
                    transform, height, width, file_crs = ds.transform, ds.height, ds.width, ds.crs
                    extent = box(*ds.bounds)
                footprint = shape(transform_geom("EPSG:4326", file_crs, mapping(product.footprint)))
                data = shape(transform_geom(file_crs, crs, mapping(footprint.intersection(extent))))
                for iy in range(len(cube.chunks[2])):
                    for ix in range(len(cube.chunks[3])):
                        left, right = t.c + t.a * x_edges[ix], t.c + t.a * x_edges[ix + 1]
                        top, bottom = t.f + t.e * y_edges[iy], t.f + t.e * y_edges[iy + 1]
                        chunk = box(left, bottom, right, top)
                        if not data.intersects(chunk) or (area and not area.intersects(chunk)):
                            continue
                        bounds = transform_bounds(crs, file_crs, left, bottom, right, top,
                                                  densify_pts=21)  # fmt: skip
                        w = from_bounds(*bounds, transform=transform)
                        col0 = max(0, math.floor(w.col_off + 1e-6))
                        row0 = max(0, math.floor(w.row_off + 1e-6))
                        col1 = min(width, math.ceil(w.col_off + w.width - 1e-6))
                        row1 = min(height, math.ceil(w.row_off + w.height - 1e-6))
                        if col1 > col0 and row1 > row0:
                            found.setdefault((step, str(band), iy, ix), []).append(
                                (product.band(str(band)).path, col0, row0, col1 - col0, row1 - row0)
                            )
    return found


def _computed_reads(cube, aoi=None) -> dict[tuple[int, str, int, int], list[tuple]]:
    bands = [str(b) for b in cube.band.values]
    steps = [
        [
            {b: BandGrid.of(read_product(p, require_bands=None), b) for b in bands}
            for p in str(text).split("\n")
        ]
        for text in cube.product_path.values
    ]
    return {
        (task.step, task.band, task.chunk.iy, task.chunk.ix): [
            (w.path, w.col_off, w.row_off, w.width, w.height) for w in task.reads
        ]
        for task in decode_tasks(ChunkGrid.of(cube), steps, bands, aoi)
    }


@pytest.mark.parametrize(
    "tiles", [BUDAPEST_TILES, ZONE_BOUNDARY_TILES], ids=["one-zone", "two-zones"]
)
def test_decode_windows_are_those_gdal_computes(tmp_path, tiles):
    """Same zone with misaligned grids (34TDT's pixels do not coincide with 34TCT's at this
    scale), and two UTM zones (33TYN warped into zone 34): every chunk's windows of every
    file, as rasterio computes them from the files' georeferencing."""
    paths = _archive(tmp_path, tiles)
    cube = open_cube(paths, bands=["B04"], resolution=RES, chunks=48)
    expected = _expected_reads(cube)
    assert _computed_reads(cube) == expected
    assert len(cube.chunks[2]) * len(cube.chunks[3]) > 4  # several chunks, not one
    # every product is read, and some chunks read two files (the tiles overlap)
    assert {w[0] for reads in expected.values() for w in reads} == {
        read_product(p, require_bands=None).band("B04").path for p in paths
    }
    assert any(len(reads) == 2 for reads in expected.values())


def test_decode_windows_leave_out_chunks_outside_the_aoi(budapest):
    aoi = box(18.9, 47.3, 19.3, 47.6)  # a small box in the middle of 34TCT
    cube = open_cube(budapest[:2], bands=["B04"], resolution=RES, chunks=16)
    everything, inside = _computed_reads(cube), _computed_reads(cube, aoi)
    assert inside == _expected_reads(cube, aoi)
    assert 0 < len(inside) < len(everything) / 4


def test_footprints_not_extents_decide_what_a_chunk_reads():
    """A product whose data covers the west half of its tile: east chunks read nothing."""
    utm = "EPSG:32634"
    transform = Affine(100.0, 0, 400000, 0, -100.0, 5100000)
    west_half = box(400000, 5090000, 405000, 5100000)
    to_lonlat = Transformer.from_crs(utm, 4326, always_xy=True).transform
    # (the footprint's edge at x = 405000 is the edge of chunk columns 1 and 2: touching
    # column 2 is not meeting it)
    footprint = shapely.transform(west_half, to_lonlat, interleaved=False)
    band = BandGrid("a.jp2", utm, transform, (100, 100), footprint)
    grid = ChunkGrid(utm, transform, (100, 100), ((50, 50), (25, 25, 25, 25)))
    tasks = decode_tasks(grid, [[{"B04": band}]], ["B04"])
    assert sorted((t.chunk.iy, t.chunk.ix) for t in tasks) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(t.source_pixels == t.chunk.pixels == 50 * 25 for t in tasks)


def test_windows_round_outwards_as_rasterio_does():
    rng = np.random.default_rng(7)
    transform = Affine(10.0, 0, 399960, 0, -10.0, 5200020)
    for _ in range(300):
        left = 399960 + rng.uniform(-500, 1500)
        bottom = 5200020 - rng.uniform(0, 1500)
        bounds = (left, bottom, left + rng.uniform(1, 800), bottom + rng.uniform(1, 800))
        w = from_bounds(*bounds, transform=transform)
        col0, row0 = max(0, math.floor(w.col_off + 1e-6)), max(0, math.floor(w.row_off + 1e-6))
        col1 = min(100, math.ceil(w.col_off + w.width - 1e-6))
        row1 = min(100, math.ceil(w.row_off + w.height - 1e-6))
        got = window_of(bounds, transform, (100, 100), "x")
        if col1 <= col0 or row1 <= row0:
            assert got is None
        else:
            expected = (col0, row0, col1 - col0, row1 - row0)
            assert (got.col_off, got.row_off, got.width, got.height) == expected
    # a chunk on the pixel lattice takes no pixel more
    exact = window_of((400060.0, 5199920.0, 400160.0, 5200020.0), transform, (100, 100))
    assert (exact.col_off, exact.row_off, exact.width, exact.height) == (10, 0, 10, 10)


# ------------------------------------------------------------------------ whole runs


def _same_cube(stored, expected) -> None:
    for name in ("time", "band", "y", "x"):
        np.testing.assert_array_equal(stored[name].values, expected[name].values)
    np.testing.assert_array_equal(stored.values, expected.values)  # NaNs compare equal


def test_bench_on_a_local_cluster_into_the_loopback_s3_store(tmp_path, s3_env):
    out = tmp_path / "out"
    url = f"s3://{BUCKET}/bench-{uuid.uuid4().hex[:8]}.zarr"
    args = ["bench", "--scale", str(SCALE), "--dates", "1", "--workers", "2", "--store", url,
            "--out", str(out), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + repr(result.exception)

    report = json.loads((out / "bench.json").read_text())
    phases = {p["kind"]: p for p in report["phases"]}
    assert set(phases) == PHASES
    for p in report["phases"]:
        assert p["seconds"] > 0, p
        if p["kind"] != "plan":
            assert p["mpix_per_s"] > 0 and p["peak_mb"] > 50, p
    cube_mpix = report["cube"]["mpix"]
    assert cube_mpix == pytest.approx(4 * 180 * 344 / 1e6)  # both tiles, 1 date, 4 bands
    decode, ingest = phases["decode"], phases["ingest"]
    assert decode["mpix"] == ingest["mpix"] == pytest.approx(cube_mpix)
    # the overlap of the two tiles is decoded twice
    assert decode["source_mpix"] == pytest.approx(report["cube"]["decode_source_mpix"])
    assert decode["source_mpix"] > cube_mpix
    ratio = report["ratios"]["ingest_to_decode_limit"]
    assert ratio == pytest.approx(ingest["mpix_per_s"] / decode["mpix_per_s"]) and ratio > 0
    assert ingest["ratio_to_decode_limit"] == ratio
    assert phases["plan"]["tasks"] > 0 and ingest["workers"] == 2
    # the scaling run used one worker, and only that one
    scaling = phases["scaling"]
    assert scaling["workers"] == 1
    assert sorted(scaling["tasks_per_worker"].values()) == [0, ingest["tasks"]]
    assert [r["workers"] for r in report["scaling"]] == [1, 2]
    assert report["options"]["store"] == url and report["cluster"]["workers"] == 2
    assert report["versions"]["gdal"] and report["machine"]["cpus"] >= 1

    # the table, and the store: the cube of the same products computed here
    for name in ("decode limit", "ingest", "clip", "stretch", "aggregate", "scaling"):
        assert f"\n{name} " in result.output
    (archive,) = (out / "archive").iterdir()
    local = open_cube(sorted(archive.glob("*.SAFE")), resolution=RES).compute()
    _same_cube(open_zarr(url), local)

    page = (out / "bench.html").read_text()
    for text in ("Ingest scaling over workers", "decode limit (2 workers)",
                 "ideal (linear from 1 worker)", "Wall time per phase", "Bokeh.embed"):  # fmt: skip
        assert text in page, text
    assert "<script src=" not in page  # standalone: nothing fetched


def test_bench_on_a_running_scheduler_with_products_and_an_aoi(tmp_path, budapest):
    from distributed import LocalCluster

    aoi = "19.0,47.2,19.9,47.7"  # across the overlap of the two tiles
    # a scheduler and two workers listening on the loopback, as a cluster elsewhere would
    # (threads of this process: quicker to start than processes, here where the point is
    # reaching a scheduler by its address)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster:  # fmt: skip
        args = ["bench", "--products", str(budapest[0].parent), "--aoi", aoi,
                "--resolution", str(RES), "--scheduler", cluster.scheduler_address,
                "--workers", "1", "--rounds", "2", "--skip", "stretch", "aggregate",
                "--out", str(tmp_path / "out"),
                "--no-progress"]  # fmt: skip
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert report["cluster"]["scheduler"] == cluster.scheduler_address
    assert [p["kind"] for p in report["phases"]] == ["plan", "decode", "ingest", "clip"]
    assert all(len(p["seconds_rounds"]) == 2 for p in report["phases"][:3])
    assert all(p["workers"] == 1 for p in report["phases"][1:])
    for phase in report["phases"][1:]:  # on the first of the two workers only
        assert sorted(phase["tasks_per_worker"].values())[0] == 0, phase
    assert report["scaling"] == [report["scaling"][0]] and report["scaling"][0]["workers"] == 1
    area = tuple(float(v) for v in aoi.split(","))
    local = open_cube(budapest, resolution=RES, aoi=area).compute()
    _same_cube(open_zarr(tmp_path / "out" / "bench.zarr"), local)


# ------------------------------------------------------------------------ errors


def _fails(args: list[str], *expected: str) -> str:
    result = CliRunner().invoke(main, ["bench", *args, "--no-progress"])
    assert result.exit_code != 0, result.output
    for text in expected:
        assert text in result.output, result.output
    return result.output


def test_an_unreachable_scheduler_is_named_with_what_to_do(tmp_path, budapest):
    args = ["--products", str(budapest[0].parent), "--scheduler", "tcp://127.0.0.1:9",
            "--connect-timeout", "1", "--out", str(tmp_path)]  # fmt: skip
    _fails(args, "tcp://127.0.0.1:9", "leave out --scheduler")


def test_products_that_are_empty_or_miss_the_aoi(tmp_path, budapest):
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(["--products", str(empty), "--out", str(tmp_path)], "no products were found")
    _fails(["--products", str(budapest[0].parent), "--aoi", "-70,-50,-69,-49",
            "--out", str(tmp_path)], "no products meet the AOI")  # fmt: skip
    _fails(["--products", str(budapest[0].parent), "--scale", "30", "--out", str(tmp_path)],
           "--scale describe a generated archive")  # fmt: skip


def test_a_store_url_without_keys_fails_before_any_work(tmp_path, s3_env, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    out = tmp_path / "out"
    _fails(["--store", f"s3://{BUCKET}/x.zarr", "--out", str(out)], "no S3 keys were found",
           "AWS_ACCESS_KEY_ID")  # fmt: skip
    assert not (out / "archive").exists()  # nothing generated, no cluster started


def test_a_missing_bucket_and_existing_stores(tmp_path, s3_env):
    _fails(["--store", "s3://no-such-bucket/x.zarr", "--out", str(tmp_path)],
           "does not exist")  # fmt: skip
    store = tmp_path / "mine.zarr"
    store.mkdir()
    (store / "zarr.json").write_text("{}")
    _fails(["--store", str(store), "--out", str(tmp_path)], "--overwrite")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_text("x")
    _fails(["--store", str(folder), "--overwrite", "--out", str(tmp_path)],
           "is not a Zarr store")  # fmt: skip
    assert (folder / "a.jpg").exists()
    _fails(["--skip", "ingest", "--out", str(tmp_path)], "cannot skip ingest")
