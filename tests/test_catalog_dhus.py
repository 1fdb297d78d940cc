"""DHuSCatalog (through sentinelsat) against the loopback DHuS hub."""

from __future__ import annotations

import pytest
from pandas.api.types import pandas_dtype

from _dhus_server import DHuSServer, parse_solr_query
from sentinel_cube.catalog._dhus import DHuSCatalog, node_filter
from sentinel_cube.catalog._errors import AuthenticationError
from sentinel_cube.catalog._http import RetryPolicy
from sentinel_cube.safe import read_product
from sentinel_cube.schema import COLUMNS
from sentinel_cube.testing.servers._loopback import Faults, served_archive

FAST = RetryPolicy(attempts=3, backoff=0.01, timeout=10.0)
BUDAPEST = (19.0, 47.4, 19.2, 47.6)


@pytest.fixture(scope="session")
def zips(tmp_path_factory):
    return served_archive(tmp_path_factory.getbasetemp() / "catalog-archive")


@pytest.fixture()
def server(zips):
    with DHuSServer(zips) as running:
        yield running


@pytest.fixture()
def cat(server):
    return DHuSCatalog(server.api_url, "user", "secret", retry=FAST)


def test_search_maps_sentinelsat_columns_onto_the_schema(cat, zips):
    products = cat.search(aoi=BUDAPEST, date=("2023-07-01", "2023-08-31"), producttype="L2A",
                          cloudcoverpercentage=(0, 100), relativeorbitnumber=79)  # fmt: skip
    assert list(products["tileid"]) == ["34TCT", "34TCT"]
    for column, dtype in COLUMNS.items():
        assert products[column].dtype == pandas_dtype(dtype), column
    row = products.iloc[0]
    local = read_product(next(z for z in zips if row.name in z.name), require_bands=None)
    assert row["vegetationpercentage"] == pytest.approx(local.vegetation, abs=1e-6)
    assert row["platformserialidentifier"] == "Sentinel-2A" and row["epsg"] == 32634
    assert row["size"] > 200_000 and row["catalog"] == f"dhus:{cat.url}"
    assert "link" not in products.columns and "gmlfootprint" not in products.columns
    both = cat.search(tileid=["34TCT", "34TDT"], platformname="S2B")
    assert sorted(both["tileid"]) == ["34TCT", "34TDT"]


def test_whole_product_download_is_verified_and_skipped_on_rerun(cat, server, tmp_path):
    products = cat.search(tileid="34TDT")
    result = cat.download(products, tmp_path, progress=False)
    assert result.ok and len(result.downloaded) == 2
    for pid, path in result.downloaded.items():
        assert path.name == f"{pid}.zip" and path.read_bytes() == server.products[pid].data
    again = cat.download(products, tmp_path, progress=False)
    assert again.skipped == result.downloaded and not again.downloaded


def test_bands_through_the_node_filter_make_a_readable_partial_safe(cat, server, tmp_path):
    products = cat.search(aoi=BUDAPEST)
    result = cat.download(products, tmp_path, bands=["B04", "SCL"], progress=False)
    assert result.ok and len(result.downloaded) == 2
    for path in result.downloaded.values():
        assert set(read_product(path, require_bands=["B04", "SCL"]).bands) == {"B04", "SCL"}
    nodes = [r.path for r in server.requests_to("/Nodes(", "GET") if r.path.endswith("$value")]
    assert not any("_B02_" in n or "_B04_20m" in n for n in nodes)
    before = len(server.requests)
    assert len(cat.download(products, tmp_path, bands=["B04"], progress=False).skipped) == 2
    assert len(server.requests) == before


def test_sentinelsat_resumes_an_incomplete_file(cat, server, tmp_path):
    products = cat.search(tileid="34TCT").iloc[:1]
    pid = products.index[0]
    (tmp_path / f"{pid}.zip.incomplete").write_bytes(server.products[pid].data[:100_000])
    result = cat.download(products, tmp_path, progress=False)
    assert result.ok
    assert server.requests_to("/$value", "GET")[-1].range == "bytes=100000-"
    assert result.downloaded[pid].read_bytes() == server.products[pid].data


def test_corrupt_transfer_is_retried_by_sentinelsat(zips, tmp_path):
    with DHuSServer(zips[:1], faults=Faults(corrupt_times=1)) as server:
        cat = DHuSCatalog(server.api_url, "user", "secret", retry=FAST)
        result = cat.download(cat.search(), tmp_path, progress=False)
        assert result.ok
        (path,) = result.paths
        assert path.read_bytes() == next(iter(server.products.values())).data


def test_offline_product_is_triggered_then_waited_for(cat, server, tmp_path):
    products = cat.search(tileid="34TCT")
    offline = products.index[0]
    server.set_offline(offline, polls=2)
    pending = cat.download(products, tmp_path, progress=False)
    assert list(pending.pending) == [offline] and len(pending.downloaded) == 1
    assert server.triggered == [server.products[offline].uuid]
    waited = cat.download(products, tmp_path, wait=True, poll_interval=0.02, timeout=10,
                          progress=False)  # fmt: skip
    assert list(waited.downloaded) == [offline] and list(waited.skipped) == [products.index[1]]


def test_hostile_product_name_is_refused(cat, server, tmp_path):
    products = cat.search(tileid="34TCT").iloc[:1]
    name = products.index[0]
    server.rename(name, f"../{name}")  # the hub's OData now answers a hostile Name
    result = cat.download(products, tmp_path / "inner", progress=False)
    assert "outside the download folder" in result.failed[name]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_node_filter_refuses_paths_leaving_the_product():
    refused: list[str] = []
    keep = node_filter(["B04"], refused)
    assert not keep({"node_path": "../GRANULE/x/IMG_DATA/R10m/T_20230810T094549_B04_10m.jp2"})
    assert keep({"node_path": "MTD_MSIL2A.xml"}) and keep({"node_path": "GRANULE/G/MTD_TL.xml"})
    assert refused and refused[0].startswith("../")


def test_wrong_credentials(server):
    cat = DHuSCatalog(server.api_url, "user", "wrong", retry=FAST)
    with pytest.raises(AuthenticationError, match="refused the user 'user'") as caught:
        cat.search()
    assert "wrong" not in str(caught.value)


def test_solr_query_subset():
    match = parse_solr_query(
        'beginPosition:["2023-07-01T00:00:00Z" TO "2023-07-31T23:59:59Z"] '
        'cloudcoverpercentage:["0" TO "30"] platformname:"Sentinel-2" '
        '(tileid:"34TCT" OR tileid:"34TDT") relativeorbitnumber:79'
    )
    from datetime import UTC, datetime

    fields = {"beginposition": datetime(2023, 7, 6, tzinfo=UTC), "cloudcoverpercentage": 2.0,
              "platformname": "Sentinel-2", "tileid": "34TDT",
              "relativeorbitnumber": 79}  # fmt: skip
    assert match(fields)
    assert not match({**fields, "cloudcoverpercentage": 31.0})
    assert not match({**fields, "tileid": "33TYN"})
