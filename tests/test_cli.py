"""The command line: --help everywhere, --version, demo, info and search."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

import sentinel_cube as sc
from sentinel_cube.cli import main
from sentinel_cube.testing import default_specs, make_archive

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


def test_demo_generates_lists_and_summarises(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--scale", "61"])
    assert result.exit_code == 0, result.output
    products = gpd.read_file(out / "products.geojson")
    on_disk = [p for p in (out / "archive").iterdir() if p.suffix == ".SAFE"]
    assert len(on_disk) == 18  # 2 tiles x 9 dates
    assert 0 < len(products) <= len(on_disk)
    assert "acquisitions per month" in result.output
    assert str(out / "products.geojson") in result.output
    assert (out / "aoi.geojson").exists()
    cube = sc.open_zarr(out / "budapest.zarr")
    assert cube.sizes["time"] == len(products)  # one AOI tile, one step per date
    assert list(cube.band.values) == ["B02", "B03", "B04", "B08"]
    assert cube.rio.crs.to_epsg() == 32634
    with rasterio.open(out / "budapest_rgb.png") as png:
        assert png.count == 4  # RGB + alpha (transparent outside the AOI)
        alpha = png.read(4)
        assert (alpha == 0).any() and (alpha == 255).any()
    monthly = sc.open_zarr(out / "budapest_monthly.zarr")
    assert [str(t)[:7] for t in monthly.time.values] == ["2023-06", "2023-07", "2023-08", "2023-09"]


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
