"""CDSECatalog against the loopback CDSE: search, paging, enrichment, partial products."""

from __future__ import annotations

from urllib.parse import unquote_plus

import numpy as np
import pandas as pd
import pytest
from pandas.api.types import pandas_dtype

import sentinel_cube as sc
from sentinel_cube.catalog._cdse import CDSECatalog
from sentinel_cube.catalog._cdse_query import build_filter, odata_time
from sentinel_cube.catalog._errors import AuthenticationError
from sentinel_cube.catalog._http import RetryPolicy, same_site
from sentinel_cube.safe import read_product
from sentinel_cube.schema import COLUMNS
from sentinel_cube.testing.servers._cdse import CDSEServer
from sentinel_cube.testing.servers._loopback import served_archive

FAST = RetryPolicy(attempts=4, backoff=0.01, timeout=10.0)
USER, PASSWORD = "user@example.org", "secret"
BUDAPEST = (19.0, 47.4, 19.2, 47.6)  # inside 34TCT only


@pytest.fixture(scope="session")
def zips(tmp_path_factory):
    return served_archive(tmp_path_factory.getbasetemp() / "catalog-archive")


@pytest.fixture()
def server(zips):
    with CDSEServer(zips) as running:
        yield running


@pytest.fixture()
def cat(server):
    return CDSECatalog(USER, PASSWORD, retry=FAST, **server.catalog_kwargs)


def test_search_filters_on_the_server(cat, server):
    everything = cat.search()
    assert len(everything) == 4 and everything["uuid"].notna().all()
    found = cat.search(aoi=BUDAPEST, date=("2023-08-01", "2023-08-31"), producttype="S2MSI2A",
                       platformname="Sentinel-2B", relativeorbitnumber=79,
                       cloudcoverpercentage=(0, 100), tileid="T34TCT")  # fmt: skip
    assert list(found["tileid"]) == ["34TCT"]
    assert found["beginposition"].dt.strftime("%Y-%m-%d").tolist() == ["2023-08-10"]
    query = unquote_plus(server.requests_to("/odata/v1/Products?")[-1].path)
    assert "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((19 47.4, " in query
    assert "att/OData.CSC.StringAttribute/Value eq 'B'" in query
    clear = cat.search(cloudcoverpercentage=(0, 5))
    assert (clear["cloudcoverpercentage"] <= 5).all() and len(clear) < 4


def test_search_table_has_the_schema(cat):
    products = cat.search(tileid="34TCT")
    for column, dtype in COLUMNS.items():
        assert products[column].dtype == pandas_dtype(dtype)
    assert products.crs.to_epsg() == 4326 and products.index.name == "product_id"
    row = products.iloc[0]
    assert row["platformname"] == "Sentinel-2" and row["processinglevel"] == "Level-2A"
    assert row["epsg"] == 32634 and row["catalog"] == "cdse" and len(row["checksum"]) == 32
    assert pd.isna(row["vegetationpercentage"])  # CDSE does not publish it


def test_paging_follows_next_links_and_limit_stops_early(server):
    cat = CDSECatalog(USER, PASSWORD, retry=FAST, page_size=1, **server.catalog_kwargs)
    assert len(cat.search()) == 4
    assert len(server.requests_to("/odata/v1/Products?", "GET")) == 4
    before = len(server.requests)
    assert len(cat.search(limit=2)) == 2
    assert len(server.requests) - before == 2


def test_enrich_fills_image_content_from_the_mtd(cat, zips):
    products = cat.search(tileid="34TCT", enrich=True)
    for pid, row in products.iterrows():
        local = read_product(next(z for z in zips if pid in z.name), require_bands=None)
        assert row["vegetationpercentage"] == pytest.approx(local.vegetation)
        assert row["waterpercentage"] == pytest.approx(local.water)
        assert row["snowicepercentage"] == pytest.approx(local.snow_ice)
        assert row["highprobacloudspercentage"] == pytest.approx(
            local.quality["high_proba_clouds_percentage"]
        )


def test_partial_safe_is_read_by_read_product_and_open_cube(cat, server, tmp_path):
    products = cat.search(aoi=BUDAPEST)
    result = cat.download(products, tmp_path, bands=["B04", "SCL"], progress=False)
    assert len(result.downloaded) == 2 and result.ok
    for path in result.paths:
        assert path.suffix == ".SAFE"
        product = read_product(path, require_bands=["B04", "SCL"])
        assert set(product.bands) == {"B04", "SCL"}
        with pytest.raises(sc.ProductError, match="missing"):
            read_product(path)  # the other bands are really absent
    listed = sc.LocalCatalog(tmp_path, require_bands=None, cache=False).search()
    assert set(listed.index) == set(products.index)
    cube = sc.open_cube(listed, bands=["B04"], resolution=610, aoi=BUDAPEST).compute()
    assert cube.sizes["time"] == 2 and np.isfinite(cube.values).any()
    files = {p.relative_to(tmp_path).parts[-1] for p in tmp_path.rglob("*") if p.is_file()}
    assert {"manifest.safe", "MTD_MSIL2A.xml", "MTD_TL.xml"} <= files
    assert not any(n.endswith(".part") for n in files)


def test_rerun_is_a_no_op_and_more_bands_fetch_only_the_missing_files(cat, server, tmp_path):
    products = cat.search(aoi=BUDAPEST)
    cat.download(products, tmp_path, bands=["B04"], progress=False)
    before = len(server.requests_to("/download/"))
    again = cat.download(products, tmp_path, bands=["B04"], progress=False)
    assert len(again.skipped) == 2 and not again.downloaded
    assert len(server.requests_to("/download/")) == before  # nothing requested at all
    more = cat.download(products, tmp_path, bands=["B04", "B08"], progress=False)
    assert len(more.downloaded) == 2
    new = [r.path for r in server.requests_to("/download/")[before:]]
    assert len(new) == 2 and all("B08_10m.jp2" in p for p in new)


def test_whole_product_download_and_rerun(cat, server, tmp_path):
    products = cat.search(tileid="34TDT")
    first = cat.download(products, tmp_path, progress=True)
    assert len(first.downloaded) == 2
    for pid, path in first.downloaded.items():
        assert path.name == f"{pid}.zip" and path.read_bytes() == server.products[pid].data
        assert read_product(path).tile_id == "34TDT"
    second = cat.download(products, tmp_path, progress=False)
    assert second.skipped == first.downloaded and not second.downloaded


def test_redirected_downloads_keep_the_token_on_the_same_site(zips, tmp_path):
    with CDSEServer(zips[:1], redirect_downloads=True) as server:
        cat = CDSECatalog(USER, PASSWORD, retry=FAST, **server.catalog_kwargs)
        result = cat.download(cat.search(), tmp_path, progress=False)
        assert result.ok
        hops = server.requests_to("/$value")
        assert [h.path.split("/")[1] for h in hops] == ["download", "zipper"]
        assert all(h.authorized for h in hops)
    assert same_site(
        "https://download.dataspace.copernicus.eu/x",
        "https://zipper.dataspace.copernicus.eu/y",
        (".dataspace.copernicus.eu",),
    )
    assert not same_site("https://download.dataspace.copernicus.eu/x", "https://example.com/y",
                         (".dataspace.copernicus.eu",))  # fmt: skip
    assert not same_site("https://host/x", "http://host/y")


def test_missing_uuid_is_looked_up_by_name(cat, tmp_path):
    products = cat.search(tileid="34TCT").drop(columns=["uuid"])
    result = cat.download(products.iloc[:1], tmp_path, bands=["SCL"], progress=False)
    assert result.ok and len(result.downloaded) == 1


def test_unknown_band_fails_naming_the_product(cat, tmp_path):
    products = cat.search(tileid="34TCT").iloc[:1]
    result = cat.download(products, tmp_path, bands=["B10"], progress=False)
    (reason,) = result.failed.values()
    assert products.index[0] in reason and "B10" in reason and "bands it has" in reason


def test_wrong_password_is_refused_without_echoing_it(server, tmp_path):
    cat = CDSECatalog(USER, "not-the-password", retry=FAST, **server.catalog_kwargs)
    products = cat.search()  # searching needs no login
    result = cat.download(products.iloc[:1], tmp_path, progress=False)
    (reason,) = result.failed.values()
    assert "refused" in reason and USER in reason and "not-the-password" not in reason
    with pytest.raises(AuthenticationError):
        cat.search(enrich=True, limit=1)
    assert "not-the-password" not in repr(cat)


def test_token_only_works_until_refused(server, tmp_path):
    login = CDSECatalog(USER, PASSWORD, retry=FAST, **server.catalog_kwargs)
    token = login._tokens.access_token()
    cat = CDSECatalog(token=token, retry=FAST, **server.catalog_kwargs)
    products = cat.search(tileid="34TCT")
    assert cat.download(products.iloc[:1], tmp_path, bands=["SCL"], progress=False).ok
    server.expire_access_tokens()
    result = cat.download(products.iloc[1:], tmp_path, bands=["SCL"], progress=False)
    (reason,) = result.failed.values()
    assert "no user name and password" in reason and token not in reason


def test_filter_syntax_matches_cdse():
    text = build_filter(date=("2023-06-01", "2023-06-30"), cloudcoverpercentage=(0, 30.5),
                        relativeorbitnumber=[79, 36], aoi=BUDAPEST)  # fmt: skip
    assert text.startswith("Collection/Name eq 'SENTINEL-2' and ContentDate/Start ge "
                           "2023-06-01T00:00:00.000Z and ContentDate/Start le "
                           "2023-06-30T23:59:59.999Z")  # fmt: skip
    assert ("OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((19 47.4, 19 47.6, "
            "19.2 47.6, 19.2 47.4, 19 47.4))')") in text  # fmt: skip
    assert "att/OData.CSC.DoubleAttribute/Value le 30.5)" in text
    assert "(Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'relativeOrbitNumber' " \
           "and att/OData.CSC.IntegerAttribute/Value eq 79) or " in text  # fmt: skip
    assert odata_time(pd.Timestamp("2023-01-02T03:04:05.678901Z")) == "2023-01-02T03:04:05.678Z"
    with pytest.raises(ValueError, match="not Sentinel-2"):
        build_filter(platformname="Landsat-8")


@pytest.mark.parametrize(("max_connections", "max_workers"), [(4, None), (2, 4), (4, 1)])
def test_concurrent_connections_are_bounded(zips, tmp_path, max_connections, max_workers):
    from sentinel_cube.testing.servers._loopback import Faults

    with CDSEServer(zips, faults=Faults(slow=0.15)) as server:
        cat = CDSECatalog(USER, PASSWORD, retry=FAST, max_connections=max_connections,
                          **server.catalog_kwargs)  # fmt: skip
        result = cat.download(cat.search(), tmp_path, max_workers=max_workers, progress=False)
        assert len(result.downloaded) == 4
        bound = min(max_connections, max_workers or max_connections)
        assert min(bound, 2) <= server.max_in_flight <= bound


def test_sha3_manifests_are_verified(tmp_path):
    from sentinel_cube.testing import default_specs, make_archive

    specs = default_specs(("34TCT",), ("2023-07-06",))
    zips = make_archive(tmp_path / "src", specs, scale=61, zipped=True, checksum="SHA3-256")
    with CDSEServer(zips) as server:
        cat = CDSECatalog(USER, PASSWORD, retry=FAST, **server.catalog_kwargs)
        products = cat.search()
        server.faults.corrupt_times = 1
        server.faults.only = "_B04_10m.jp2"
        result = cat.download(products, tmp_path / "out", bands=["B04"], progress=False)
        assert result.ok
        # the corrupt copy failed its SHA3-256 check and was fetched again
        assert len(server.requests_to("_B04_10m.jp2", "GET")) == 2
    (path,) = result.paths
    manifest = (path / "manifest.safe").read_text()
    assert 'checksumName="SHA3-256"' in manifest
    assert read_product(path, require_bands=["B04"]).bands["B04"].path.endswith("_B04_10m.jp2")


def test_credentials_and_tokens_never_reach_logs_or_results(server, tmp_path, caplog):
    import logging

    from sentinel_cube.report import write_products

    caplog.set_level(logging.DEBUG)
    cat = CDSECatalog(USER, PASSWORD, retry=FAST, **server.catalog_kwargs)
    products = cat.search(tileid="34TCT", enrich=True)
    result = cat.download(products, tmp_path, bands=["SCL"], progress=True)
    token = cat._tokens.access_token()
    write_products(products, str(tmp_path / "products.geojson"))
    texts = [caplog.text, result.report(), repr(cat), (tmp_path / "products.geojson").read_text()]
    for text in texts:
        assert PASSWORD not in text and token not in text
    assert "urllib3" in caplog.text  # debug logging really was on
