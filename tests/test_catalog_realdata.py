"""Catalogue parsers on real CDSE, DHuS and STAC answers; the test servers have their shape.

Reads ``../shared/real-data`` in place (skipped when absent): CDSE OData pages and
a manifest, recorded SciHub DHuS exchanges (vcrpy cassettes), Earth Search and
Planetary Computer STAC items. The loopback servers' JSON is compared key by key
with these files, so the offline tests exercise the clients on realistic input.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
import yaml

from _dhus_server import DHuSServer, odata_product, opensearch_entry
from _stac_server import stac_item
from sentinel_cube.catalog._cdse_query import parse_products, percentage_columns
from sentinel_cube.catalog._dhus import dhus_products_frame
from sentinel_cube.catalog._safe_parts import select_entries
from sentinel_cube.catalog._stac import item_files, stac_products_frame
from sentinel_cube.safe._manifest import parse_manifest
from sentinel_cube.safe._product_mtd import parse_product_metadata
from sentinel_cube.testing.servers._cdse import CDSEServer, product_json
from sentinel_cube.testing.servers._loopback import served_archive

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "real-data"
pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not REAL_DATA.is_dir(), reason="../shared/real-data is absent"),
]
CDSE_S2 = "cdse-odata/odata_products_s2_l1c_eodag_cop_dataspace_search.json"
CDSE_S1 = "cdse-odata/odata_products_s1_page1_count_cdsetool.json"
T33XWJ = "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126"
T01KAB = "S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825"
ISO_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _json(relative: str):
    return json.loads((REAL_DATA / relative).read_text())


def _cassette(name: str) -> list[dict]:
    return yaml.safe_load((REAL_DATA / "dhus-cassettes" / name).read_text())["interactions"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    zips = served_archive(tmp_path_factory.getbasetemp() / "catalog-archive")
    with CDSEServer(zips[:1]) as server:
        yield server


# --------------------------------------------------------------------------- CDSE


def test_real_cdse_page_parses_into_the_products_table():
    page = _json(CDSE_S2)
    products = parse_products(page["value"])
    assert list(products["tileid"]) == ["54PXA", "55PBR"]
    first = products.iloc[0]
    assert first.name == "S2A_MSIL1C_20200808T010311_N0500_R045_T54PXA_20230413T212505"
    assert first["cloudcoverpercentage"] == pytest.approx(95.136736479015)
    assert first["checksum"] == "923ac4992d90b57d41e7ace4d9d90757" and len(first["blake3"]) == 64
    assert first["processingbaseline"] == "05.00" and first["relativeorbitnumber"] == 45
    assert first["platformserialidentifier"] == "Sentinel-2A" and first["epsg"] == 32654
    assert first["size"] == 224105657 and bool(first["online"])
    assert str(first["beginposition"]) == "2020-08-08 01:03:11.024000+00:00"
    assert products.geometry.is_valid.all() and products.total_bounds[0] > 142
    s1 = parse_products(_json(CDSE_S1)["value"])  # other missions do not break the parser
    assert len(s1) == 10 and s1["tileid"].isna().all()


def test_cdse_server_products_have_the_real_shape(served):
    real = _json(CDSE_S2)["value"][0]
    ours = product_json(next(iter(served.products.values())), ["Attributes", "Assets"], "x")
    assert list(ours) == list(real)  # same keys, same order
    assert [a["Name"] for a in ours["Attributes"]] == [a["Name"] for a in real["Attributes"]]
    assert {k for a in ours["Attributes"] for k in a} == {k for a in real["Attributes"] for k in a}
    assert [c["Algorithm"] for c in ours["Checksum"]] == ["MD5", "BLAKE3"]
    assert set(ours["Checksum"][0]) == set(real["Checksum"][0])
    assert set(ours["Assets"][0]) == set(real["Assets"][0])
    for key in ("OriginDate", "PublicationDate", "EvictionDate"):
        assert ISO_US.match(ours[key]) and ISO_US.match(real[key])
    assert ISO_US.match(ours["ContentDate"]["Start"])
    assert ours["Footprint"].startswith("geography'SRID=4326;POLYGON ((")
    assert real["Footprint"].startswith("geography'SRID=4326;POLYGON ((")
    assert ours["GeoFootprint"]["type"] == real["GeoFootprint"]["type"] == "Polygon"
    types = {a["Name"]: (a["@odata.type"], a["ValueType"]) for a in real["Attributes"]}
    assert {a["Name"]: (a["@odata.type"], a["ValueType"]) for a in ours["Attributes"]} == types


def test_cdse_server_pages_have_the_real_shape(served):
    import requests

    real = _json(CDSE_S2)
    url = f"{served.url}/odata/v1/Products"
    params = [("$filter", "Collection/Name eq 'SENTINEL-2'"), ("$orderby", "ContentDate/Start asc"),
              ("$top", "0"), ("$expand", "Attributes"), ("$expand", "Assets")]  # fmt: skip
    page = requests.get(url, params=params, timeout=10).json()
    assert list(page) == list(real)
    assert page["@odata.context"] == real["@odata.context"]
    assert page["@odata.nextLink"].split("?")[1].startswith("%24filter=Collection%2FName+eq+")
    assert real["@odata.nextLink"].split("?")[1].startswith("%24filter=Collection%2FName+eq+")
    counted = requests.get(url, params=[*params, ("$count", "true")], timeout=10).json()
    assert list(counted) == list(_json(CDSE_S1))
    assert "$skip=0" in unquote_plus(page["@odata.nextLink"])


def test_real_manifest_gives_the_files_of_a_band_subset():
    manifest = (REAL_DATA / "cdse-odata/s2_l1c_manifest.safe.cdsetool-mock.xml").read_bytes()
    chosen = select_entries(parse_manifest(manifest), ["B04", "B8A"], "S2B_MSIL1C_x")
    names = sorted(e.href.rsplit("/", 1)[-1] for e in chosen)
    assert names == ["INSPIRE.xml", "MTD_MSIL1C.xml", "MTD_TL.xml",
                     "T17UPV_20241209T162609_B04.jp2",
                     "T17UPV_20241209T162609_B8A.jp2"]  # fmt: skip
    assert {e.checksum_name for e in chosen} == {"SHA3-256"} and all(e.size for e in chosen)
    l2a = REAL_DATA / "safe-metadata" / f"{T33XWJ}.SAFE"
    entries = parse_manifest((l2a / "manifest.safe").read_bytes())
    files = select_entries(entries, ["B04", "SCL"], "x")
    bands = sorted(e.href.rsplit("/", 1)[-1] for e in files if "IMG_DATA" in e.href)
    assert bands == ["T33XWJ_20220413T150759_B04_10m.tif", "T33XWJ_20220413T150759_SCL_20m.tif"]
    assert {e.checksum_name for e in files} == {"MD5"}


def test_enrichment_columns_from_a_real_mtd():
    mtd = REAL_DATA / "safe-metadata" / f"{T01KAB}.SAFE"
    meta = parse_product_metadata((mtd / "MTD_MSIL2A.xml").read_bytes(), "MTD_MSIL2A.xml")
    columns = percentage_columns(meta.percentages)
    text = (mtd / "MTD_MSIL2A.xml").read_text()
    vegetation = float(re.search(r"<VEGETATION_PERCENTAGE>([\d.]+)<", text).group(1))
    assert columns["vegetationpercentage"] == pytest.approx(vegetation)
    assert {"waterpercentage", "snowicepercentage", "notvegetatedpercentage",
            "highprobacloudspercentage"} <= set(columns)  # fmt: skip


# --------------------------------------------------------------------------- DHuS


def _feed(name: str) -> dict:
    return json.loads(_cassette(name)[0]["response"]["body"]["string"])["feed"]


def test_real_dhus_opensearch_parses_through_sentinelsat():
    from sentinelsat import SentinelAPI
    from sentinelsat.sentinel import _parse_opensearch_response

    feed = _feed("test_s2_cloudcover.yaml")
    parsed = _parse_opensearch_response(feed["entry"])
    products = dhus_products_frame(SentinelAPI.to_geodataframe(parsed), "dhus:https://hub/")
    assert len(products) == int(feed["opensearch:totalResults"]) == 5
    assert (products["cloudcoverpercentage"] <= 10).all()
    first = products.loc["S2B_MSIL1C_20181219T142029_N0207_R010_T20MPS_20181219T160056"]
    assert first["tileid"] == "20MPS" and first["uuid"] == "bf652bc4-299c-4c39-9238-ee5a3fdc0d3e"
    assert first["size"] == pytest.approx(110.44 * 1024**2, rel=1e-3)
    assert str(first["beginposition"]) == "2018-12-19 14:20:29.024000+00:00"
    assert first["epsg"] == 32720 and products.geometry.is_valid.all()


def test_dhus_server_json_has_the_real_shape(served):
    feed = _feed("test_s2_cloudcover.yaml")
    entries = feed["entry"]
    real_l2a = next(e for e in entries if "MSIL2A" in e["title"])
    real_l1c = next(e for e in entries if "MSIL1C" in e["title"])
    product = next(iter(served.products.values()))
    ours = opensearch_entry(product, "https://hub/dhus/")
    assert set(ours) == set(real_l2a)
    for kind in ("date", "int", "double", "str"):
        names = {d["name"] for d in ours[kind]}
        real_names = {d["name"] for e in (real_l1c, real_l2a)
                      for d in (e[kind] if isinstance(e[kind], list) else [e[kind]])}  # fmt: skip
        assert names <= real_names, (kind, names - real_names)
    assert {d["name"] for d in real_l2a["str"]} <= {d["name"] for d in ours["str"]}
    real_odata = json.loads(_cassette("test_download.yaml")[0]["response"]["body"]["string"])
    ours_odata = odata_product(product, "https://hub/dhus/")
    assert set(ours_odata["d"]) == set(real_odata["d"])
    assert set(ours_odata["d"]["__metadata"]) == set(real_odata["d"]["__metadata"])
    assert re.match(r"^/Date\(\d+\)/$", ours_odata["d"]["CreationDate"])


def test_dhus_server_speaks_like_the_recorded_hub(zips_dhus):
    import requests

    server, uuid, name = zips_dhus
    auth = ("user", "secret")
    odata = f"{server.api_url}odata/v1/Products('{uuid}')"
    resumed = requests.get(f"{odata}/$value", headers={"Range": "bytes=25-"}, auth=auth, timeout=9)
    real_resumed = next(i["response"] for i in _cassette("test_download.yaml")
                        if i["request"]["headers"].get("Range") == ["bytes=25-"])  # fmt: skip
    assert resumed.status_code == real_resumed["status"]["code"] == 206
    pattern = re.compile(r"^bytes 25-(\d+)/(\d+)$")
    assert pattern.match(resumed.headers["content-range"])
    assert pattern.match(real_resumed["headers"]["content-range"][0])
    head = requests.head(f"{odata}/$value", auth=auth, timeout=9)
    real_head = next(i["response"] for i in _cassette("test_download.yaml")
                     if i["request"]["method"] == "HEAD")  # fmt: skip
    disposition = re.compile(r'^inline;filename="[^"/]+\.zip"$')
    assert disposition.match(head.headers["content-disposition"])
    assert disposition.match(real_head["headers"]["content-disposition"][0])
    assert head.headers["content-disposition"] == f'inline;filename="{name}.zip"'
    server.set_offline(name, polls=100)
    lta = requests.get(f"{odata}/$value", headers={"Range": "bytes=0-1"}, auth=auth, timeout=9)
    recorded_lta = _cassette("test_download_all_lta.yaml")[-1]
    assert recorded_lta["request"]["headers"]["Range"] == ["bytes=0-1"]
    assert lta.status_code == recorded_lta["response"]["status"]["code"] == 202
    denied = requests.get(f"{server.api_url}search?q=x", timeout=9)
    recorded = _cassette("test_SentinelAPI_wrong_credentials.yaml")[0]["response"]
    assert denied.status_code == recorded["status"]["code"] == 401
    assert denied.headers["www-authenticate"] == recorded["headers"]["www-authenticate"][0]


@pytest.fixture()
def zips_dhus(tmp_path_factory):
    zips = served_archive(tmp_path_factory.getbasetemp() / "catalog-archive")
    with DHuSServer(zips[:1]) as server:
        product = next(iter(server.products.values()))
        yield server, product.uuid, product.name


# --------------------------------------------------------------------------- STAC


def test_real_stac_items_map_onto_the_schema():
    earth = _json("stac-items/earth_search_v1_s2l2a_search_trimmed.json")
    products = stac_products_frame(earth["features"], "stac:https://earth-search")
    row = products.loc["S2A_MSIL2A_20231008T175231_N0509_R141_T13TDE_20231008T233154"]
    assert row["tileid"] == "13TDE" and row["epsg"] == 32613
    assert row["vegetationpercentage"] == pytest.approx(44.52863)
    assert row["snowicepercentage"] == pytest.approx(0.059024)
    assert row["highprobacloudspercentage"] == pytest.approx(6.3e-05)
    assert row["processingbaseline"] == "05.09" and row["relativeorbitnumber"] == 141
    assert row["platformserialidentifier"] == "Sentinel-2A" and row["producttype"] == "S2MSI2A"
    planetary = _json("stac-items/planetary_computer_s2l2a_search_trimmed.json")
    pc = stac_products_frame(planetary["features"], "stac:https://planetarycomputer")
    assert len(pc) == 2 and set(pc["orbitdirection"]) == {"DESCENDING"}
    assert pc["waterpercentage"].notna().all() and pc["tileid"].str.len().eq(5).all()
    old = stac_products_frame([_json("stac-items/S2A_28QCH_20200714_0_L2A.json")], "stac:x")
    assert old.iloc[0]["tileid"] == "28QCH" and old.index[0].startswith("S2A_MSIL2A_20200714")


def test_real_items_give_downloadable_files():
    pc = _json("stac-items/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json")
    layout, folder, files = item_files(pc, ["B04", "SCL"])
    assert layout == "safe"
    assert folder == "S2B_MSIL2A_20190629T212529_N0212_R043_T06VVN_20201006T080531"
    paths = sorted(f.path for f in files)
    assert "MTD_MSIL2A.xml" in paths and "manifest.safe" in paths
    assert "GRANULE/L2A_T06VVN_A012081_20190629T212530/IMG_DATA/R10m/" \
           "T06VVN_20190629T212529_B04_10m.tif" in paths  # fmt: skip
    earth = _json("stac-items/earth_search_v1_s2l2a_search_trimmed.json")["features"][0]
    layout, folder, files = item_files(earth, ["B04"])
    assert layout == "flat" and folder == "S2A_13TDE_20231008_0_L2A"
    band = next(f for f in files if f.path == "B04.tif")  # the JP2 is s3:// only
    assert band.url.startswith("https://")


def test_stac_server_items_have_the_real_shape(served):
    real = _json("stac-items/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json")
    ours = stac_item(next(iter(served.products.values())), "http://x")
    assert set(ours) == set(real)
    assert set(ours["properties"]) == set(real["properties"])
    extra = {"file:size", "file:checksum"}
    assert set(ours["assets"]["B04"]) - extra <= set(real["assets"]["B04"])
    assert set(ours["assets"]["product-metadata"]) - extra <= set(
        real["assets"]["product-metadata"]
    ) | {"roles"}
    assert {link["rel"] for link in ours["links"]} <= {link["rel"] for link in real["links"]}
