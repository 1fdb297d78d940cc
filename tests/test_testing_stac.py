"""Tests of ``sentinel_cube.testing.stac``: provider trees, COGs and STAC items.

The COGs are checked against the JP2 files with rasterio; the items against the real
items of the shared reference data (Earth Search v1, Planetary Computer) and against
the key names of the CDSE catalogue's own example item, value by value against the
product's metadata, through pystac, through an independent STAC reader (odc-stac,
over the loopback HTTP server) and through the loopback STAC API.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import rasterio
import requests
import shapely
import shapely.geometry

from _stac_fixtures import DATES, RESOLUTION, SCALE, harmonised
from _stac_server import STACServer
from sentinel_cube.catalog._stac import STACCatalog
from sentinel_cube.safe import read_product
from sentinel_cube.testing.stac import (
    EARTH_SEARCH_COG,
    PROVIDERS,
    CogProfile,
    PlanetaryComputer,
    item_collection,
    product_facts,
    publish_items,
    stac_items,
)

#: Assets of the real items that need rasters or files the generator does not write.
NOT_GENERATED = {
    "earth_search": {"aot", "wvp", "visual", "thumbnail", "tileinfo_metadata", "aot-jp2",
                     "wvp-jp2", "visual-jp2"},
    "planetary_computer": {"AOT", "WVP", "visual", "preview", "inspire-metadata",
                           "datastrip-metadata", "tilejson", "rendered_preview"},
}  # fmt: skip
#: Key names of the CDSE catalogue's example ``sentinel-2-l2a`` item (eu-cdse/eometadatatool,
#: ``stac/sentinel-2-l2a/example/S2A_MSIL2A_20220217T183431_N0510_R027_T13VEK_...json``).
CDSE_PROPERTIES = {
    "auth:schemes", "constellation", "created", "datetime", "end_datetime", "eo:cloud_cover",
    "eo:snow_cover", "eopf:datastrip_id", "eopf:datatake_id", "eopf:instrument_mode",
    "eopf:origin_datetime", "expires", "grid:code", "gsd", "instruments", "platform",
    "processing:datetime", "processing:facility", "processing:level", "processing:software",
    "processing:version", "product:timeliness", "product:timeliness_category", "product:type",
    "published", "sat:absolute_orbit", "sat:orbit_state", "sat:platform_international_designator",
    "sat:relative_orbit", "start_datetime", "statistics", "storage:schemes", "updated",
    "view:azimuth", "view:incidence_angle", "view:sun_azimuth", "view:sun_elevation",
}  # fmt: skip
CDSE_BAND_ASSET = {
    "type", "title", "roles", "bands", "data_type", "nodata", "raster:scale", "raster:offset",
    "gsd", "proj:code", "proj:shape", "proj:bbox", "proj:transform", "view:azimuth",
    "view:incidence_angle", "file:checksum", "file:size", "file:local_path", "href",
    "alternate:name", "auth:refs", "storage:refs", "alternate",
}  # fmt: skip
_SPECTRAL_ONLY = {"bands", "raster:scale", "raster:offset", "view:azimuth", "view:incidence_angle"}
CDSE_SCL_ASSET = (CDSE_BAND_ASSET - _SPECTRAL_ONLY) | {"classification:classes"}
CDSE_METADATA_ASSET = {
    "type", "title", "roles", "file:checksum", "file:size", "file:local_path", "href",
    "alternate:name", "auth:refs", "storage:refs", "alternate",
}  # fmt: skip
CDSE_ASSETS = {f"{b}_{r}m" for b in ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A",
                                     "B11", "B12", "SCL") for r in (20, 60)} | {
    "B02_10m", "B03_10m", "B04_10m", "B08_10m", "B09_60m", "safe_manifest", "product_metadata",
    "granule_metadata", "inspire_metadata", "datastrip_metadata", "thumbnail", "Product",
} | {f"{b}_{r}m" for b in ("TCI", "AOT", "WVP") for r in (10, 20, 60)}  # fmt: skip


def _real(real_data: Path, name: str) -> dict:
    return json.loads((real_data / "stac-items" / name).read_text())


def _by_product(items: list[dict], product_id: str, name: str) -> dict:
    """The item of ``product_id`` among a provider's items."""
    for item in items:
        props = item["properties"]
        uri = props.get("s2:product_uri", item["id"] + ".SAFE")
        if uri.removesuffix(".SAFE") == product_id:
            return item
    raise AssertionError(f"no {name} item for {product_id}")


def _local(published, name: str, url: str) -> Path:
    """The file under the provider's tree that an href names."""
    relative = url.removeprefix(f"{published.base_url}/{name}/")
    return published.root / name / relative


def _band_assets(item: dict) -> dict[str, dict]:
    return {k: a for k, a in item["assets"].items()
            if "data" in a.get("roles", []) and k != "Product"}  # fmt: skip


# ------------------------------------------------------------------------------ COGs


@pytest.mark.parametrize("name", ["earth_search", "planetary_computer"])
def test_cogs_hold_the_jp2_pixels_on_the_jp2_grid(stac_published, name):
    cogs = 0
    for item in stac_published.items[name]:
        for key, asset in _band_assets(item).items():
            if not asset["href"].endswith(".tif"):
                continue
            cog = _local(stac_published, name, asset["href"])
            band = key.upper() if name == "planetary_computer" else None
            facts = product_facts(next(p for p in stac_published.safe
                                       if p.name.startswith(_product_of(item))))  # fmt: skip
            image = next(i for i in facts.native_images()
                         if i.band == (band or _es_band(key)))  # fmt: skip
            with rasterio.open(cog) as got, rasterio.open(facts.safe / image.member) as jp2:
                expected = jp2.read()
                if item["properties"].get("earthsearch:boa_offset_applied") and key != "scl":
                    expected = harmonised(expected)  # the offset in the pixels
                assert np.array_equal(got.read(), expected), cog.name
                assert got.crs == jp2.crs and got.transform == jp2.transform
                assert got.dtypes == jp2.dtypes and got.nodata == 0
                structure = got.tags(ns="IMAGE_STRUCTURE")
                assert structure["LAYOUT"] == "COG" and structure["COMPRESSION"] == "DEFLATE"
                assert got.profile["tiled"] and got.block_shapes[0] == (128, 128)
                if got.width > 128:
                    assert got.overviews(1), f"{cog.name} has no overview"
            cogs += 1
    assert cogs == 2 * 2 * 13  # 2 tiles x 2 dates x 13 band files


def _product_of(item: dict) -> str:
    return item["properties"]["s2:product_uri"].removesuffix(".SAFE")


def _es_band(key: str) -> str:
    from sentinel_cube.testing.stac import BAND_INFO

    return next(b for b, info in BAND_INFO.items() if info.earth_search_key == key)


def test_cog_profiles_follow_the_providers():
    assert EARTH_SEARCH_COG.for_scale(1).blocksize == 1024
    assert EARTH_SEARCH_COG.for_scale(10).blocksize == 128
    options = EARTH_SEARCH_COG.options(class_band=True)
    assert options["COMPRESS"] == "DEFLATE" and options["PREDICTOR"] == "2"
    assert options["OVERVIEW_RESAMPLING"] == "NEAREST"
    assert CogProfile(compress="ZSTD", level=9).options(False)["LEVEL"] == "9"


def test_full_size_tiles_and_overviews_like_earth_search(stac_published, tmp_path):
    profile = CogProfile(blocksize=64)  # the 1024 px rule on a 180 px image
    item = publish_items(stac_published.safe[:1], tmp_path, "earth_search", "http://x",
                         bands=["B04"], cog_profile=profile)[0]  # fmt: skip
    with rasterio.open(_local_at(tmp_path, item["assets"]["red"]["href"])) as cog:
        assert cog.block_shapes[0] == (64, 64) and cog.overviews(1) == [2, 4]


def _local_at(root: Path, url: str) -> Path:
    return root / urlsplit(url).path.lstrip("/")


# ------------------------------------------------------------------------ item shapes


def test_earth_search_items_have_the_real_shape(stac_published, real_data):
    real = _real(real_data, "earth_search_v1_s2l2a_search_trimmed.json")["features"][0]
    ours = stac_published.items["earth_search"][-1]
    assert set(ours) == set(real)
    assert set(ours["properties"]) == set(real["properties"])
    assert ours["stac_extensions"] == real["stac_extensions"]
    assert set(ours["assets"]) <= set(real["assets"])
    assert set(real["assets"]) - set(ours["assets"]) == NOT_GENERATED["earth_search"]
    for key in ("red", "nir08", "coastal", "scl", "red-jp2", "scl-jp2", "granule_metadata"):
        assert set(ours["assets"][key]) == set(real["assets"][key]), key
        for ours_band, real_band in zip(
            ours["assets"][key].get("raster:bands", []),
            real["assets"][key].get("raster:bands", []),
            strict=True,
        ):
            assert set(ours_band) == set(real_band), key  # fmt: skip
    assert [link["rel"] for link in ours["links"]] == [link["rel"] for link in real["links"]]


@pytest.mark.parametrize("raster_bands", [False, True])
def test_planetary_computer_items_have_the_real_shape(stac_published, real_data, raster_bands):
    if raster_bands:
        real = _real(
            real_data, "S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531_raster_ext.json"
        )
        ours = stac_items(stac_published.safe[-1:], PlanetaryComputer(raster_bands=True),
                          "http://x")[0]  # fmt: skip
    else:
        real = _real(real_data, "planetary_computer_s2l2a_search_trimmed.json")["features"][0]
        ours = stac_published.items["planetary_computer"][-1]
    assert set(ours) == set(real)
    assert set(ours["properties"]) == set(real["properties"])
    assert ours["stac_extensions"] == real["stac_extensions"]
    assert set(real["assets"]) - set(ours["assets"]) == NOT_GENERATED["planetary_computer"]
    assert set(ours["assets"]) <= set(real["assets"])
    for key in ("B04", "B8A", "B01", "SCL", "product-metadata", "granule-metadata",
                "safe-manifest"):  # fmt: skip
        assert set(ours["assets"][key]) == set(real["assets"][key]), key
    assert {link["rel"] for link in ours["links"]} <= {link["rel"] for link in real["links"]}


def test_cdse_items_have_the_catalogue_shape(stac_published):
    ours = stac_published.items["cdse"][-1]
    assert set(ours) == {"type", "stac_version", "collection", "id", "properties", "bbox",
                         "geometry", "links", "assets", "stac_extensions"}  # fmt: skip
    assert ours["stac_version"] == "1.1.0"
    assert set(ours["properties"]) == CDSE_PROPERTIES
    assert set(ours["assets"]) <= CDSE_ASSETS
    assert set(ours["assets"]["B04_10m"]) == CDSE_BAND_ASSET
    assert set(ours["assets"]["B8A_20m"]) == CDSE_BAND_ASSET
    assert set(ours["assets"]["SCL_20m"]) == CDSE_SCL_ASSET
    assert set(ours["assets"]["product_metadata"]) == CDSE_METADATA_ASSET
    assert [link["rel"] for link in ours["links"]] == ["version-history", "enclosure"]
    assert ours["assets"]["B04_10m"]["href"].endswith(".jp2")
    assert ".SAFE/GRANULE/" in ours["assets"]["B04_10m"]["href"]


# ------------------------------------------------------------------------ item values


def _assert_product_values(item: dict, name: str, product, facts) -> None:
    props = item["properties"]
    assert props["datetime"].startswith(f"{product.sensing_start:%Y-%m-%dT%H:%M:%S}")
    epsg = props.get("proj:epsg") or int(
        item["assets"]["B04_10m"]["proj:code"].removeprefix("EPSG:")
    )
    assert epsg == product.epsg
    baseline = props.get("s2:processing_baseline") or props.get("processing:version")
    assert baseline == product.processing_baseline
    tile = props.get("s2:mgrs_tile") or props["grid:code"].removeprefix("MGRS-")
    assert tile == product.tile_id
    assert props["eo:cloud_cover"] == pytest.approx(product.cloud_cover or 0.0, abs=0.01)
    vegetation = props.get("s2:vegetation_percentage", props.get("statistics", {}).get(
        "vegetation"))  # fmt: skip
    assert vegetation == pytest.approx(product.vegetation)


@pytest.mark.parametrize("name", PROVIDERS)
def test_item_values_come_from_the_product(stac_published, name):
    for path in stac_published.safe:
        product = read_product(path)
        facts = product_facts(path)
        item = _by_product(stac_published.items[name], product.product_id, name)
        _assert_product_values(item, name, product, facts)
        band_key = {"earth_search": "red", "planetary_computer": "B04", "cdse": "B04_10m"}[name]
        asset = item["assets"][band_key]
        band = product.bands["B04"]
        assert asset["proj:transform"] == list(band.transform)[:6]
        assert asset["proj:shape"] == list(band.shape)
        scale, offset = 1 / band.quantification, band.offset / band.quantification
        expected_offset = -0.1 if product.processing_baseline >= "04.00" else 0.0
        assert offset == pytest.approx(expected_offset)
        if name == "earth_search":
            raster = asset["raster:bands"][0]
            assert (raster["scale"], raster["offset"]) == pytest.approx((scale, offset))
            assert item["properties"]["earthsearch:boa_offset_applied"] is (offset != 0)
        elif name == "cdse":
            assert (asset["raster:scale"], asset["raster:offset"]) == pytest.approx((scale, offset))
        else:
            assert "raster:bands" not in asset  # radiometry from the baseline
        for asset in item["assets"].values():
            if asset["href"].startswith(stac_published.base_url):
                assert _local(stac_published, name, asset["href"]).is_file(), asset["href"]


def test_both_baselines_are_in_the_archive(stac_published):
    baselines = {read_product(p).processing_baseline for p in stac_published.safe}
    assert baselines == {"03.01", "05.09"} and len(stac_published.safe) == 2 * len(DATES)


def test_cdse_file_checksums_and_sizes_are_the_files(stac_published):
    import hashlib

    item = stac_published.items["cdse"][0]
    asset = item["assets"]["SCL_20m"]
    local = _local(stac_published, "cdse", asset["href"])
    assert asset["file:size"] == local.stat().st_size
    assert asset["file:checksum"] == "1620" + hashlib.sha3_256(local.read_bytes()).hexdigest()
    assert asset["file:local_path"].endswith(local.name)


def test_items_round_trip_through_pystac(stac_published):
    pystac = pytest.importorskip("pystac")
    for name in PROVIDERS:
        collection = pystac.ItemCollection.from_dict(item_collection(stac_published.items[name]))
        assert len(collection) == len(stac_published.safe)
        for item, ours in zip(collection, stac_published.items[name], strict=True):
            assert item.id == ours["id"]
            assert {k: a.href for k, a in item.assets.items()} == {
                k: a["href"] for k, a in ours["assets"].items()
            }
            props = item.to_dict(transform_hrefs=False)["properties"]
            if "proj:epsg" in ours["properties"]:  # pystac migrates it to projection v2
                epsg = ours["properties"]["proj:epsg"]
                assert props.pop("proj:code", f"EPSG:{epsg}") == f"EPSG:{epsg}"
                props.setdefault("proj:epsg", epsg)
            assert props == ours["properties"]


def test_stac_items_rebase_without_writing(stac_published, tmp_path):
    items = stac_items(stac_published.safe[:1], "cdse", "s3://eodata")
    href = items[0]["assets"]["B04_10m"]["href"]
    assert href.startswith("s3://eodata/Sentinel-2/MSI/L2A/")
    relative = href.removeprefix("s3://eodata/")
    assert (stac_published.root / "cdse" / relative).is_file()
    assert not list(tmp_path.iterdir())


def test_publishing_rejects_what_it_cannot_make(stac_published, tmp_path):
    with pytest.raises(ValueError, match="no band file for B10"):
        publish_items(stac_published.safe[:1], tmp_path, "cdse", "http://x", bands=["B10"])
    with pytest.raises(ValueError, match="unknown provider"):
        publish_items(stac_published.safe[:1], tmp_path, "usgs", "http://x")
    with pytest.raises(ValueError, match="zipped=False"):
        product_facts(tmp_path / "missing.SAFE")


# --------------------------------------------------------------- read by other tools


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("earth_search", {"B04": "red", "B8A": "nir08", "SCL": "scl"}),
        ("earth_search", {"B04": "red-jp2", "SCL": "scl-jp2"}),
        ("planetary_computer", {"B04": "B04", "B8A": "B8A", "SCL": "SCL"}),
        ("cdse", {"B04": "B04_10m", "B8A": "B8A_20m", "SCL": "SCL_20m"}),
    ],
)
def test_odc_stac_reads_the_product_pixels_from_the_items(stac_published, odc_dn, name, keys):
    """An independent STAC reader (odc-stac) gets the files' DN from the items over HTTP
    (the JP2's, less the offset where Earth Search applied it to its COGs)."""
    for path in stac_published.safe:
        product = read_product(path)
        item = _by_product(stac_published.items[name], product.product_id, name)
        for band, key in keys.items():
            file = product.bands[band]
            got = odc_dn([item], key, file.shape, list(file.transform), f"EPSG:{product.epsg}",
                         str(_dtype(band)))  # fmt: skip
            with rasterio.open(file.path) as jp2:
                expected = jp2.read(1)
            cog = not key.endswith("-jp2") and band != "SCL"
            if cog and item["properties"].get("earthsearch:boa_offset_applied"):
                expected = harmonised(expected)
            assert np.array_equal(got[0], expected), (name, key)


def _dtype(band: str) -> np.dtype:
    return np.dtype("uint8" if band == "SCL" else "uint16")


def test_the_stac_api_serves_generated_items(stac_published):
    earth = stac_published.items["earth_search"]
    with STACServer(items=earth) as server:
        cat = STACCatalog(server.url)
        box = (19.0, 47.4, 19.2, 47.6)  # Budapest: in 34TCT only
        found = cat.search(aoi=box, date=("2023-07-01", "2023-07-31"))
        assert (
            list(found["stac_id"])
            == [
                i["id"]
                for i in earth
                if i["properties"]["datetime"].startswith("2023-07-06")
                and shapely.geometry.shape(i["geometry"]).intersects(shapely.box(*box))
            ]
            == ["S2A_34TCT_20230706_0_L2A"]
        )
        assert set(found["processingbaseline"]) == {"05.09"}
        assert server.searches[-1]["collections"] == ["sentinel-2-l2a"]
        everything = cat.search(date=("2021-01-01", "2023-12-31"))
        assert len(everything) == len(earth)


def test_folder_server_answers_ranges(stac_published):
    item = stac_published.items["planetary_computer"][0]
    url = item["assets"]["product-metadata"]["href"]
    whole = _local(stac_published, "planetary_computer", url).read_bytes()
    assert requests.get(url, timeout=10).content == whole
    part = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206 and part.content == whole[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(whole)}"
    tail = requests.get(url, headers={"Range": "bytes=-5"}, timeout=10)
    assert tail.content == whole[-5:]
    head = requests.head(url, timeout=10)
    assert head.headers["Content-Length"] == str(len(whole)) and not head.content
    beyond = requests.get(url, headers={"Range": f"bytes={len(whole)}-"}, timeout=10)
    assert beyond.status_code == 416
    assert requests.get(f"{stac_published.base_url}/../etc/passwd", timeout=10).status_code == 404


def test_archive_scale_and_resolution():
    assert RESOLUTION == 10 * SCALE
