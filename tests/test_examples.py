"""The examples run end to end (offline; ``cdse_live.py`` against a loopback CDSE)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shapely.geometry import mapping

import sentinel_cube as sc
from sentinel_cube.testing import DEMO_AOI, CDSEServer, served_archive

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SRC = Path(__file__).resolve().parents[1] / "src"


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
        timeout=600, env={"PYTHONPATH": str(SRC), "PATH": "", **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_quickstart_runs(tmp_path):
    stdout = _run("quickstart.py", str(tmp_path))
    assert (tmp_path / "rgb.png").exists() and (tmp_path / "budapest.zarr").exists()
    assert "mean NDVI per date" in stdout


def test_tutorial_replays_every_step(tmp_path):
    stdout = _run("tutorial_budapest.py", str(tmp_path), "--scale", "61")
    assert "21 products found" not in stdout  # 34TDT misses the AOI: not returned
    assert "12 products found" in stdout and "9 of 12 products cover the whole AOI" in stdout
    for name in ("footprints", "acquisitions", "landcover", "correlation"):
        assert (tmp_path / f"{name}.html").stat().st_size > 10_000
        assert (tmp_path / f"{name}.png").stat().st_size > 1_000
    assert (tmp_path / "cube.html").exists() and (tmp_path / "rgb.png").exists()
    partial = sorted((tmp_path / "downloads").glob("*.SAFE"))
    assert len(partial) == 9
    assert "mean NDVI" in stdout and "stretch limits" in stdout


@pytest.mark.slow
def test_large_aoi_on_a_process_cluster(tmp_path):
    stdout = _run("large_aoi_cluster.py", str(tmp_path), "--scale", "61", "--workers", "2")
    assert "dask dashboard: http" in stdout
    cube = sc.open_zarr(tmp_path / "large.zarr")
    assert cube.rio.crs.to_epsg() == 32634  # the zone holding most of the AOI
    assert cube.sizes["time"] == 5 and "SCL" in cube.band.values
    # 33TYN (zone 33) was reprojected into the mosaic: its tile IDs are in the metadata
    assert any("33TYN" in str(t) for t in cube.tileid.values)
    assert (tmp_path / "monthly.zarr").exists() and (tmp_path / "large_rgb.png").exists()


def test_cdse_live_script_against_a_loopback_cdse(tmp_path):
    zips = served_archive(tmp_path / "hub")
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps(mapping(DEMO_AOI)))
    with CDSEServer(zips) as server:
        (user, password), *_ = server.users.items()
        env = {
            "CDSE_CATALOGUE_URL": server.catalog_kwargs["catalogue_url"],
            "CDSE_DOWNLOAD_URL": server.catalog_kwargs["download_url"],
            "CDSE_TOKEN_URL": server.catalog_kwargs["token_url"],
            "CDSE_USERNAME": user,
            "CDSE_PASSWORD": password,
            "HOME": str(tmp_path),
        }
        stdout = _run("cdse_live.py", str(tmp_path / "out"), "--aoi", str(aoi),
                      "--start", "2023-07-01", "--end", "2023-08-31", "--max-cloud", "100",
                      "--resolution", "610", env=env)  # fmt: skip
    assert password not in stdout
    assert (tmp_path / "out" / "report" / "index.html").exists()
    assert (tmp_path / "out" / "rgb.png").exists()
    cube = sc.open_zarr(tmp_path / "out" / "cube.zarr")
    assert cube.sizes["time"] == 2
    assert os.listdir(tmp_path / "out" / "products")


def test_notebook_is_stripped_and_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(EXAMPLES / "tutorial_budapest.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "9 of 12 products cover the whole AOI" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the RGB picture


def test_cloud_cluster_from_s3_products_to_an_s3_store(s3_env, tmp_path):
    import uuid

    import numpy as np

    from sentinel_cube.testing import make_archive

    bucket = f"example-{uuid.uuid4().hex[:12]}"
    s3_env.client().create_bucket(Bucket=bucket)
    folders = make_archive(tmp_path / "archive", dates=["2023-06-01", "2023-06-11"], scale=61)
    for folder in folders:
        s3_env.upload(folder, "archive", bucket=bucket)
    store = f"s3://{bucket}/cubes/example.zarr"
    args = ("--products", f"s3://{bucket}/archive", "--store", store, "--resolution", "610",
            "--bands", "B04,B08,SCL", "--workers", "2")  # fmt: skip
    env = {**s3_env.env(), "HOME": str(tmp_path)}
    stdout = _run("cloud_cluster.py", *args, env=env)
    assert f"{store}: 2 steps written, 0 already there" in stdout
    expected = sc.open_cube(folders, bands=["B04", "B08", "SCL"], resolution=610)
    np.testing.assert_array_equal(sc.open_zarr(store).values, expected.values)
    # the same ingest again (as the example's rerun would): nothing left to write
    assert sc.to_zarr(expected, store, progress=False).written == ()
