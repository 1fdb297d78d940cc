"""STACCatalog (pystac-client) against the loopback STAC API; asset selection."""

from __future__ import annotations

import pytest
from pandas.api.types import pandas_dtype

from _stac_server import STACServer, stac_item
from sentinel_cube.catalog._errors import UnsafeNameError
from sentinel_cube.catalog._http import RetryPolicy
from sentinel_cube.catalog._stac import STACCatalog, asset_band, item_files
from sentinel_cube.exceptions import CatalogError
from sentinel_cube.safe import read_product
from sentinel_cube.schema import COLUMNS
from sentinel_cube.testing.servers._loopback import Faults, served_archive

FAST = RetryPolicy(attempts=4, backoff=0.01, timeout=10.0)
BUDAPEST = (19.0, 47.4, 19.2, 47.6)


@pytest.fixture(scope="session")
def zips(tmp_path_factory):
    return served_archive(tmp_path_factory.getbasetemp() / "catalog-archive")


@pytest.fixture()
def server(zips):
    with STACServer(zips) as running:
        yield running


@pytest.fixture()
def cat(server):
    return STACCatalog(server.url, retry=FAST)


def test_search_maps_s2_properties_onto_the_schema(cat, zips):
    products = cat.search(aoi=BUDAPEST, date=("2023-07-01", "2023-08-31"),
                          cloudcoverpercentage=(0, 100))  # fmt: skip
    assert list(products["tileid"]) == ["34TCT", "34TCT"]
    for column, dtype in COLUMNS.items():
        assert products[column].dtype == pandas_dtype(dtype), column
    for pid, row in products.iterrows():
        local = read_product(next(z for z in zips if pid in z.name), require_bands=None)
        assert row["vegetationpercentage"] == pytest.approx(local.vegetation)
        assert row["waterpercentage"] == pytest.approx(local.water)
        assert row["highprobacloudspercentage"] == pytest.approx(
            local.quality["high_proba_clouds_percentage"]
        )
        assert row["relativeorbitnumber"] == 79 and row["orbitdirection"] == "DESCENDING"
    assert set(products["collection"]) == {"sentinel-2-l2a"}


def test_cloud_range_goes_to_the_server_as_a_query(cat, server):
    clear = cat.search(cloudcoverpercentage=(0, 5), date=("2023-07-01", "2023-07-31"))
    assert (clear["cloudcoverpercentage"] <= 5).all() and len(clear) >= 1
    body = server.searches[-1]
    assert body["query"] == {"eo:cloud_cover": {"gte": 0.0, "lte": 5.0}}
    assert body["datetime"] == "2023-07-01T00:00:00.000000Z/2023-07-31T23:59:59.999999Z"
    assert body["collections"] == ["sentinel-2-l2a"]
    assert len(cat.search(limit=3)) == 3


def test_band_assets_become_a_readable_partial_safe(cat, server, tmp_path):
    products = cat.search(aoi=BUDAPEST)
    result = cat.download(products, tmp_path, bands=["B04", "B08", "SCL"], progress=False)
    assert result.ok and len(result.downloaded) == 2
    for path in result.downloaded.values():
        product = read_product(path, require_bands=["B04", "B08", "SCL"])
        assert set(product.bands) == {"B04", "B08", "SCL"}
    before = len(server.requests)
    again = cat.download(products, tmp_path, bands=["B04", "SCL"], progress=False)
    assert len(again.skipped) == 2 and len(server.requests) == before  # checked offline


def test_asset_download_survives_a_503_burst(zips, tmp_path):
    with STACServer(zips[:1], faults=Faults(fail_times=2, only="/data/")) as server:
        cat = STACCatalog(server.url, retry=FAST)
        result = cat.download(cat.search(), tmp_path, bands=["SCL"], progress=False)
        assert result.ok
        assert len(server.requests_to("/data/")) == 2 + 4  # 2 failures, then 4 files


def test_item_files_prefers_jp2_and_keeps_the_safe_layout(server):
    item = stac_item(next(iter(server.products.values())), server.url)
    layout, folder, files = item_files(item, ["B04"])
    assert layout == "safe" and folder == next(iter(server.products))
    paths = sorted(f.path for f in files)
    assert paths[0].startswith("GRANULE/") and paths[-1] == "manifest.safe"
    band = next(f for f in files if f.path.endswith(".jp2"))
    assert band.checksums.keys() == {"MD5"} and band.size
    with pytest.raises(CatalogError, match="B10"):
        item_files(item, ["B10"])


def test_item_files_refuses_hrefs_leaving_the_folder():
    item = {"id": "x", "assets": {"B04": {"href": "https://h/p/../../../etc/B04.jp2",
                                          "type": "image/jp2", "roles": ["data"]}}}  # fmt: skip
    # the flat layout keeps base names, so '..' never reaches the disk
    assert item_files(item, ["B04"])[2][0].path == "B04.jp2"
    hostile = {"id": "x", "assets": {
        "product-metadata": {"href": "https://h/x.SAFE/../MTD_MSIL2A.xml", "roles": ["metadata"]},
        "B04": {"href": "https://h/x.SAFE/../../B04.jp2", "type": "image/jp2"}}}  # fmt: skip
    with pytest.raises(UnsafeNameError):
        item_files(hostile, ["B04"])


def test_asset_band_names():
    assert asset_band("nir08", {}) == "B8A" and asset_band("swir22-jp2", {}) == "B12"
    assert asset_band("x", {"eo:bands": [{"name": "B11"}]}) == "B11"
    assert asset_band("visual", {}) == "TCI" and asset_band("granule_metadata", {}) is None
