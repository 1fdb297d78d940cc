"""``sentinel-cube search`` and ``download`` against the loopback catalogues."""

from __future__ import annotations

import click
import geopandas as gpd
import pytest
from click.testing import CliRunner

from _dhus_server import DHuSServer
from _stac_server import STACServer
from sentinel_cube.cli._catalog import download, search
from sentinel_cube.safe import read_product
from sentinel_cube.testing.servers._cdse import CDSEServer
from sentinel_cube.testing.servers._loopback import served_archive

CLI = click.Group(commands={"search": search, "download": download})
SECRET = "secret"
AOI = "19.0,47.4,19.2,47.6"


@pytest.fixture(scope="session")
def zips(tmp_path_factory):
    return served_archive(tmp_path_factory.getbasetemp() / "catalog-archive")


def run(*args: str, **env: str):
    return CliRunner().invoke(CLI, list(args), env=env, catch_exceptions=False)


def test_cdse_search_then_download_bands_with_credentials_from_the_environment(zips, tmp_path):
    table = tmp_path / "products.geojson"
    with CDSEServer(zips) as server:
        env = {"CDSE_USERNAME": "user@example.org", "CDSE_PASSWORD": SECRET,
               "CDSE_CATALOGUE_URL": server.catalog_kwargs["catalogue_url"],
               "CDSE_DOWNLOAD_URL": server.catalog_kwargs["download_url"],
               "CDSE_TOKEN_URL": server.catalog_kwargs["token_url"]}  # fmt: skip
        found = run("search", "--catalog", "cdse", "--aoi", AOI, "--start", "2023-07-01",
                    "--end", "2023-08-31", "--producttype", "S2MSI2A", "--cloud", "0", "100",
                    "--enrich", "--out", str(table), **env)  # fmt: skip
        assert found.exit_code == 0, found.output
        assert "2 products" in found.output
        assert "2 of 2 products cover the whole AOI" in found.output
        written = gpd.read_file(table)
        assert set(written["catalog"]) == {"cdse"} and written["vegetationpercentage"].notna().all()
        assert (written["aoi_fraction"] > 0.999).all()
        args = ["download", str(table), "--bands", "B04", "SCL", "--dir", str(tmp_path / "out")]
        first = run(*args, **env)
        assert first.exit_code == 0, first.output
        assert "2 downloaded, 0 already complete" in first.output
        again = run(*args, "--no-progress", **env)
        assert "0 downloaded, 2 already complete" in again.output
    for output in (found.output, first.output, again.output):
        assert SECRET not in output
    for path in (tmp_path / "out").iterdir():
        assert set(read_product(path, require_bands=["B04", "SCL"]).bands) == {"B04", "SCL"}


def test_dhus_and_stac_catalogues(zips, tmp_path):
    with DHuSServer(zips) as hub, STACServer(zips) as stac:
        dhus_table, stac_table = tmp_path / "dhus.csv", tmp_path / "stac.parquet"
        env = {"DHUS_USERNAME": "user", "DHUS_PASSWORD": SECRET}
        result = run("search", "--catalog", f"dhus:{hub.api_url}", "--tile", "34TDT",
                     "--out", str(dhus_table), **env)  # fmt: skip
        assert result.exit_code == 0 and "2 products" in result.output, result.output
        got = run("download", str(dhus_table), "--dir", str(tmp_path / "d"), "--no-progress",
                  **env)  # fmt: skip
        assert "2 downloaded" in got.output, got.output
        assert sorted(p.suffix for p in (tmp_path / "d").iterdir()) == [".zip", ".zip"]
        result = run("search", "--catalog", f"stac:{stac.url}", "--aoi", AOI, "--limit", "1",
                     "--out", str(stac_table))  # fmt: skip
        assert result.exit_code == 0 and "1 products" in result.output, result.output
        got = run("download", str(stac_table), "--bands", "B08,SCL", "--dir", str(tmp_path / "s"))
        assert "1 downloaded" in got.output, got.output


def test_failures_set_the_exit_status_and_errors_are_one_line(zips, tmp_path):
    with CDSEServer(zips[:1]) as server:
        env = {"CDSE_USERNAME": "user@example.org", "CDSE_PASSWORD": "wrong",
               "CDSE_CATALOGUE_URL": server.catalog_kwargs["catalogue_url"],
               "CDSE_DOWNLOAD_URL": server.catalog_kwargs["download_url"],
               "CDSE_TOKEN_URL": server.catalog_kwargs["token_url"]}  # fmt: skip
        table = tmp_path / "p.geojson"
        assert run("search", "--catalog", "cdse", "--out", str(table), **env).exit_code == 0
        result = CliRunner().invoke(CLI, ["download", str(table), "--dir", str(tmp_path / "o"),
                                          "--no-progress"], env=env)  # fmt: skip
    assert result.exit_code == 1 and "1 failed" in result.output and "refused" in result.output
    assert "wrong" not in result.output.replace("wrong_", "")
    bad = CliRunner().invoke(CLI, ["search", "--catalog", "stac:http://127.0.0.1:9", "--enrich"])
    assert bad.exit_code != 0 and "--enrich applies to --catalog cdse only" in bad.output
    nowhere = CliRunner().invoke(CLI, ["search", "--catalog", "nowhere:x"])
    assert nowhere.exit_code != 0 and "unsupported catalogue" in nowhere.output
    assert "Traceback" not in nowhere.output
