"""The command line: --help everywhere, --version, demo, info and search."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import xarray as xr
from click.testing import CliRunner
from pyproj import Transformer

import sentinel_cube as sc
from sentinel_cube.cli import main
from sentinel_cube.cli._demo_s3 import _difference
from sentinel_cube.testing import DEMO_DATES, default_specs, make_archive
from sentinel_cube.testing.servers._s3 import DEMO_KEY_ID, DEMO_SECRET

SRC = Path(__file__).resolve().parents[1] / "src"


def test_every_command_has_help():
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    commands = list(main.commands)
    assert {"demo", "info", "search"} <= set(commands)
    for name in commands:
        sub = runner.invoke(main, [name, "--help"])
        assert sub.exit_code == 0 and "Usage:" in sub.output, name


def test_version_and_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_cube", "--version"],
        capture_output=True, text=True, env={"PYTHONPATH": str(SRC), "PATH": ""}, check=True,
    )  # fmt: skip
    assert sc.__version__ in result.stdout


def _equal_area_fraction(footprint, aoi) -> float:
    """Share of the AOI's area inside a footprint, in the AOI's Lambert equal-area projection."""
    centre = aoi.centroid
    project = Transformer.from_crs(
        4326, f"+proj=laea +lat_0={centre.y} +lon_0={centre.x} +datum=WGS84", always_xy=True
    ).transform
    area = shapely.transform(aoi, project, interleaved=False)
    return (
        shapely.transform(footprint, project, interleaved=False).intersection(area).area / area.area
    )


def test_demo_runs_the_whole_pipeline_through_a_loopback_catalogue(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--scale", "61"])
    assert result.exit_code == 0, result.output
    aoi = sc.read_aoi(out / "aoi.geojson")
    # the hub: every generated zip; the expected selection is computed from the zips' own
    # footprints: the products that intersect the AOI in the date range and cover >= 99 %
    hub = sorted((out / "hub").glob("*.zip"))
    assert len(hub) == 2 * len(DEMO_DATES) + 3
    served = [sc.read_product(p, require_bands=None) for p in hub]
    fractions = {p.product_id: _equal_area_fraction(p.footprint, aoi) for p in served}
    partial = {k for k, v in fractions.items() if 0 < v < 0.99}
    expected = {k for k, v in fractions.items() if v >= 0.99}
    assert len(partial) == 3 and len(expected) == len(DEMO_DATES)  # orbit 36 cut, tile 34TCT
    products = gpd.read_file(out / "products.geojson")
    assert set(products["title"]) == expected
    np.testing.assert_allclose(
        products.set_index("title")["aoi_fraction"].sort_index(),
        [fractions[k] for k in sorted(expected)], atol=1e-3,
    )  # fmt: skip
    assert products["vegetationpercentage"].notna().all()  # enriched from the served MTDs
    # only the asked bands were downloaded, as partial SAFEs
    downloaded = sorted((out / "downloads").glob("*.SAFE"))
    assert {p.name.removesuffix(".SAFE") for p in downloaded} == expected
    bands = {f.name.split("_")[2] for f in downloaded[0].rglob("*.jp2")}
    assert bands == {"B02", "B03", "B04", "B08", "SCL"}
    assert "acquisitions per month" in result.output
    for name in ("products.geojson", "budapest.zarr", "budapest_rgb.png", "report"):
        assert str(out / name) in result.output
    cube = sc.open_zarr(out / "budapest.zarr")
    assert cube.sizes["time"] == len(expected)  # one AOI tile, one step per date
    assert list(cube.band.values) == ["B02", "B03", "B04", "B08"]
    assert cube.rio.crs.to_epsg() == 32634
    with rasterio.open(out / "budapest_rgb.png") as png:
        assert png.count == 4  # RGB + alpha (transparent outside the AOI)
        alpha = png.read(4)
        assert (alpha == 0).any() and (alpha == 255).any()
    monthly = sc.open_zarr(out / "budapest_monthly.zarr")
    assert [str(t)[:7] for t in monthly.time.values] == ["2023-06", "2023-07", "2023-08", "2023-09"]
    index = (out / "report" / "index.html").read_text()
    assert all((out / "report" / page).exists() for page in ("footprints.html", "cube.html"))
    assert "footprints.html" in index and "cube.html" in index
    assert "S3 server" not in result.output  # the S3 stage runs with --s3 only


def test_demo_s3_runs_the_cube_stage_against_a_loopback_s3_server(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--scale", "61", "--s3"])
    assert result.exit_code == 0, result.output
    before, stage = result.output.split("11. the cube stage against a loopback S3 server")
    assert "10. HTML report" in before and "done in" in stage  # the whole demo, then S3
    assert re.match(r" \(moto\) at http://127\.0\.0\.1:\d+\n", stage)
    assert DEMO_KEY_ID not in result.output and DEMO_SECRET not in result.output
    # the downloaded products went up, one URL each, and were read from there
    downloaded = sorted((out / "downloads").glob("*.SAFE"))
    files = sum(1 for p in downloaded for f in p.rglob("*") if f.is_file())
    assert f"uploaded the {len(downloaded)} downloaded products: {files} objects" in stage
    for product in downloaded:
        assert f"      s3://eodata-demo/Sentinel-2/MSI/L2A/{product.name}\n" in stage
    steps = sc.open_zarr(out / "budapest.zarr").sizes["time"]
    assert f"read in place from those s3:// URLs (no download): {steps} time steps" in stage
    assert f"wrote the cube to s3://eodata-demo/budapest.zarr: {steps} time steps" in stage
    assert re.search(r"\d+\.\d MPix/s\), \d+ objects \(\d+ S3 requests", stage)
    assert f"equal to the local store {out / 'budapest.zarr'} value for value" in stage
    assert f"ran to_zarr again: 0 time steps written, {steps} skipped as committed" in stage
    # the local outputs are those of the plain demo
    for name in ("budapest.zarr", "budapest_rgb.png", "budapest_monthly.zarr", "report"):
        assert (out / name).exists()


def test_demo_s3_comparison_names_what_differs():
    local = xr.DataArray(
        np.array([[[[0.1, np.nan]]]], dtype="float32"), dims=("time", "band", "y", "x"),
        coords={"time": [0], "band": ["B04"], "y": [5.0], "x": [1.0, 2.0]},
    )  # fmt: skip
    assert _difference(local.copy(), local) is None  # NaNs equal
    changed = local.copy(data=np.array([[[[0.2, np.nan]]]], dtype="float32"))
    assert _difference(changed, local) == "1 of 2 values differ (float32 vs float32)"
    assert _difference(local.assign_coords(x=[1.0, 3.0]), local) == "other x coordinates"
    assert _difference(local.isel(x=[0]), local) == "shape (1, 1, 1, 1) instead of (1, 1, 1, 2)"


def test_demo_s3_without_moto_says_which_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "moto.server", None)  # import moto.server fails
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--scale", "61", "--s3"])
    assert result.exit_code == 1
    assert "pip install 'sentinel-cube[demo-s3]'" in result.output
    assert not out.exists()  # it failed before generating anything


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-archive")
    make_archive(root, default_specs(tiles=("34TCT",), dates=("2023-06-06", "2023-07-06")),
                 scale=61)  # fmt: skip
    return root


def test_info_on_a_product_and_a_folder(small_archive):
    product = sorted(small_archive.iterdir())[0]
    result = CliRunner().invoke(main, ["info", str(product)])
    assert result.exit_code == 0, result.output
    read = sc.read_product(product)
    assert read.product_id in result.output and f"EPSG:{read.epsg}" in result.output
    assert "B04" in result.output
    folder = CliRunner().invoke(main, ["info", str(small_archive)])
    assert folder.exit_code == 0 and "2 products" in folder.output


def test_search_writes_the_products_table(small_archive, tmp_path):
    out = tmp_path / "found.geojson"
    result = CliRunner().invoke(
        main,
        ["search", "--catalog", f"local:{small_archive}", "--start", "2023-07-01",
         "--end", "2023-07-31", "--aoi", "18.9,47.4,19.2,47.6", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(gpd.read_file(out)) == 1


def test_user_errors_are_one_line(small_archive, tmp_path):
    result = CliRunner().invoke(
        main, ["search", "--catalog", f"local:{small_archive}", "--aoi", str(tmp_path / "x.gpkg")]
    )
    assert result.exit_code != 0
    assert "does not exist" in result.output and "Traceback" not in result.output
    bad = CliRunner().invoke(main, ["search", "--catalog", "nowhere:x"])
    assert bad.exit_code != 0 and "unsupported catalogue" in bad.output


def test_build_writes_appends_and_refuses_to_clobber(small_archive, tmp_path):
    from sentinel_cube.cube import open_cube
    from sentinel_cube.store import open_zarr

    store = tmp_path / "cube.zarr"
    args = ["build", str(small_archive), "--bands", "B04", "B08", "--resolution", "610",
            "--aoi", "18.9,47.3,19.3,47.6", "--out", str(store)]  # fmt: skip
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "wrote 2 time steps" in first.output and "MPix/s" in first.output
    expected = open_cube(sorted(small_archive.iterdir()), bands=["B04", "B08"], resolution=610,
                         aoi=(18.9, 47.3, 19.3, 47.6)).compute()  # fmt: skip
    np.testing.assert_array_equal(open_zarr(store).values, expected.values)
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "--append" in again.output
    appended = CliRunner().invoke(main, [*args, "--append"])
    assert appended.exit_code == 0 and "wrote 0 time steps (2 already stored)" in appended.output


def test_build_on_a_local_cluster_of_processes(small_archive, tmp_path):
    """``--scheduler local``: the same store from process workers (started with the
    toolkit's worker settings, ``sentinel_cube._local_cluster``)."""
    from sentinel_cube.cube import open_cube
    from sentinel_cube.store import open_zarr

    store = tmp_path / "cube.zarr"
    result = CliRunner().invoke(main, ["build", str(small_archive), "--bands", "B04", "B08",
                                       "--resolution", "610", "--aoi", "18.9,47.3,19.3,47.6",
                                       "--scheduler", "local", "--out", str(store)])  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = open_cube(sorted(small_archive.iterdir()), bands=["B04", "B08"], resolution=610,
                         aoi=(18.9, 47.3, 19.3, 47.6)).compute()  # fmt: skip
    np.testing.assert_array_equal(open_zarr(store).values, expected.values)


def test_build_clip_masks_outside_the_aoi_polygon(small_archive, tmp_path):
    from shapely.geometry import Point

    from sentinel_cube.ops._clip import aoi_in_crs

    aoi = tmp_path / "aoi.geojson"
    disk = Point(19.1, 47.45).buffer(0.15)
    aoi.write_text(json.dumps({"type": "Feature", "properties": {},
                               "geometry": disk.__geo_interface__}))  # fmt: skip
    store = tmp_path / "clipped.zarr"
    result = CliRunner().invoke(main, ["build", str(small_archive), "--bands", "B04",
                                       "--resolution", "610", "--aoi", str(aoi), "--clip",
                                       "--out", str(store)])  # fmt: skip
    assert result.exit_code == 0, result.output
    boxed = sc.open_cube(sorted(small_archive.iterdir()), bands=["B04"], resolution=610,
                         aoi=disk).compute()  # fmt: skip
    # expected independently: rioxarray's clip of the box cube, without cropping
    expected = boxed.rio.clip([aoi_in_crs(disk, boxed.rio.crs)], drop=False)
    np.testing.assert_array_equal(sc.open_zarr(store).values, expected.values)
    bad = CliRunner().invoke(main, ["build", str(small_archive), "--clip",
                                    "--out", str(tmp_path / "x.zarr")])  # fmt: skip
    assert bad.exit_code != 0 and "--clip needs --aoi" in bad.output


def test_build_from_a_search_result(small_archive, tmp_path):
    table = tmp_path / "found.geojson"
    CliRunner().invoke(main, ["search", "--catalog", f"local:{small_archive}", "--out", str(table)])
    result = CliRunner().invoke(
        main, ["build", str(table), "--bands", "B04,SCL", "--resolution", "1220",
               "--units", "dn", "--out", str(tmp_path / "dn.zarr")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 bands" in result.output


def test_clip_stretch_and_aggregate_commands(small_archive, tmp_path):
    store = tmp_path / "cube.zarr"
    CliRunner().invoke(main, ["build", str(small_archive), "--bands", "B02", "B03", "B04", "B08",
                              "--resolution", "610", "--out", str(store)])  # fmt: skip
    aoi = "18.9,47.35,19.3,47.65"
    clipped = CliRunner().invoke(main, ["clip", str(store), "--aoi", aoi,
                                        "--out", str(tmp_path / "clip.zarr")])  # fmt: skip
    assert clipped.exit_code == 0, clipped.output
    expected = sc.clip(sc.open_zarr(store), tuple(float(v) for v in aoi.split(","))).compute()
    np.testing.assert_array_equal(sc.open_zarr(tmp_path / "clip.zarr").values, expected.values)
    png = tmp_path / "rgb.png"
    stretched = CliRunner().invoke(main, ["stretch", str(tmp_path / "clip.zarr"), "--time",
                                          "2023-07-06", "--out", str(png)])  # fmt: skip
    assert stretched.exit_code == 0, stretched.output
    assert "2023-07-06" in stretched.output and png.exists()
    monthly = tmp_path / "monthly.zarr"
    aggregated = CliRunner().invoke(
        main, ["aggregate", str(store), "--freq", "MS", "--how", "max",
               "--where", "cloudcoverpercentage <= 100 and n_products == 1",
               "--out", str(monthly)],
    )  # fmt: skip
    assert aggregated.exit_code == 0, aggregated.output
    result = sc.open_zarr(monthly)
    reference = sc.open_zarr(store).resample(time="MS").max().compute()
    np.testing.assert_array_equal(result.values, reference.values)
    hostile = "__import__('os')"
    bad = CliRunner().invoke(main, ["aggregate", str(store), "--freq", "MS",
                                    "--where", hostile, "--out", str(monthly)])  # fmt: skip
    assert bad.exit_code != 0 and "coordinate OP value" in bad.output
