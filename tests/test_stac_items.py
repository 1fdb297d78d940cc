"""STAC items as cube sources: conversion of real items, the radiometry rule, errors, pixels.

- Real items (Earth Search v1 baseline 05.09, Planetary Computer baseline 02.12, the
  odc-stac test items) convert to Products with no file opened and no network.
- Synthetic items of each provider shape and both baselines, built from a generated
  archive whose band JP2s are converted to COGs, give the same cube as the ``.SAFE``
  products, pixel for pixel, in DN and reflectance; the operations run on it.
"""

from __future__ import annotations

import copy
import json
import sys
import threading
import types
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import xarray as xr

import sentinel_cube as sc
from sentinel_cube.catalog._stac import stac_products_frame
from sentinel_cube.cube import to_products
from sentinel_cube.exceptions import MissingExtraError, ProductError, SentinelCubeError
from sentinel_cube.stac import (
    PROVIDER_ASSET_KEYS,
    asset_radiometry,
    band_assets,
    detect_provider,
    item_record,
    items_to_products,
    registered,
)
from sentinel_cube.testing import ZONE_BOUNDARY_TILES, default_specs, make_archive

ITEMS = Path("stac-items")
BANDS = ["B04", "B08", "B8A", "SCL"]
RES = 610  # the 10 m bands of a scale=61 archive


# ----------------------------------------------------------------------------- helpers


def load(real_data: Path, name: str) -> dict:
    return json.loads((real_data / ITEMS / name).read_text())


def refuse_files(monkeypatch) -> None:
    """From now on, any attempt to open a raster fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a file was opened: {args[:1]}")

    monkeypatch.setattr(rasterio, "open", refuse)
    monkeypatch.setattr("sentinel_cube.stac._items.read_file_grid", refuse)


@pytest.fixture()
def no_files(monkeypatch):
    """Any attempt to open a raster fails the test (and the network is off, conftest)."""
    refuse_files(monkeypatch)


@pytest.fixture()
def fake_pc(monkeypatch):
    """A stand-in ``planetary_computer`` module: appends a SAS token, records the calls."""
    calls: list[str] = []
    module = types.ModuleType("planetary_computer")

    def sign(href):
        calls.append(href)
        return href + "?st=2024-01-01T00%3A00Z&se=2024-01-02T00%3A00Z&sp=rl&sv=2021&sr=c&sig=SECRET"

    module.sign = sign
    monkeypatch.setitem(sys.modules, "planetary_computer", module)
    return calls


# ----------------------------------------------------------------------------- real items


def test_real_earth_search_item_converts_without_opening_files(real_data, no_files):
    page = load(real_data, "earth_search_v1_s2l2a_search_trimmed.json")
    [product] = items_to_products(page, ["B04", "B8A", "SCL"])
    assert detect_provider(page["features"][0]) == "earth-search"
    assert product.product_id == "S2A_13TDE_20231008_0_L2A"
    assert product.path == "stac://earth-search.aws.element84.com/sentinel-2-l2a/" + (
        "S2A_13TDE_20231008_0_L2A"
    )
    assert (product.platform, product.processing_level, product.producttype) == (
        "S2A", "L2A", "S2MSI2A",
    )  # fmt: skip
    assert (product.tile_id, product.epsg, product.relative_orbit) == ("13TDE", 32613, 141)
    assert product.processing_baseline == "05.09"
    assert product.sensing_start.isoformat() == "2023-10-08T18:02:55.276000+00:00"
    assert product.generation_time.isoformat() == "2023-10-08T23:31:54+00:00"
    assert product.cloud_cover == pytest.approx(0.000299)
    assert product.vegetation == pytest.approx(44.52863)
    assert product.quality["high_proba_clouds_percentage"] == pytest.approx(6.3e-05)
    assert product.footprint.bounds == pytest.approx(tuple(page["features"][0]["bbox"]))
    # the bands asked for, and SCL (for mask_clouds)
    assert list(product.bands) == ["B04", "B8A", "SCL"]
    # the band table: common names, COGs over HTTPS rather than the requester-pays JP2s
    assert list(items_to_products(page)[0].bands) == [
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
        "SCL",
    ]  # fmt: skip
    red, nir08, scl = (product.bands[b] for b in ("B04", "B8A", "SCL"))
    assert red.path == (
        "/vsicurl/https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/"
        "13/T/DE/2023/10/S2A_13TDE_20231008_0_L2A/B04.tif"
    )
    assert nir08.path.endswith("/B8A.tif") and scl.path.endswith("/SCL.tif")
    # grids from proj:shape / proj:transform of each asset
    assert (red.shape, tuple(red.transform)[:6]) == (
        (10980, 10980),
        (10, 0, 399960, 0, -10, 4500000),
    )
    assert (nir08.shape, nir08.resolution, nir08.transform.a) == ((5490, 5490), 20, 20)
    # radiometry: the COGs carry the offset already (earthsearch:boa_offset_applied)
    assert (red.offset, red.quantification, red.nodata) == (0.0, 10000.0, 0)
    assert (scl.offset, scl.quantification) == (0.0, 1.0)


def test_earth_search_flag_applies_to_cogs_only_and_follows_the_item(real_data, no_files):
    item = load(real_data, "earth_search_v1_s2l2a_search_trimmed.json")["features"][0]
    props = item["properties"]
    red, red_jp2 = item["assets"]["red"], item["assets"]["red-jp2"]
    # 05.09, flag true: COG offset 0 (raster:bands' -0.1 would subtract it twice) ...
    cog = asset_radiometry("B04", red, props, "05.09", jp2=False)
    assert (cog.offset, cog.quantification, cog.rule) == (
        0.0, 10000.0, "earthsearch:boa_offset_applied",
    )  # fmt: skip
    # ... the JP2 asset is ESA's file, unchanged: -1000
    jp2 = asset_radiometry("B04", red_jp2, props, "05.09", jp2=True)
    assert (jp2.offset, jp2.quantification, jp2.rule) == (-1000.0, 10000.0, "raster:bands")
    # an item with only the JP2 assets is read from them, with ESA's offset
    only_jp2 = copy.deepcopy(item)
    only_jp2["assets"] = {k: v for k, v in item["assets"].items() if k.endswith("-jp2")}
    [product] = items_to_products([only_jp2], ["B04"])
    band = product.bands["B04"]
    assert band.path == "/vsis3/sentinel-s2-l2a/tiles/13/T/DE/2023/10/8/0/B04.jp2"
    assert (band.offset, band.quantification) == (-1000.0, 10000.0)
    # flag false (not harmonised): raster:bands' -0.1, i.e. -1000 DN
    raw = copy.deepcopy(item)
    raw["properties"]["earthsearch:boa_offset_applied"] = False
    [product] = items_to_products([raw], ["B04"])
    assert product.bands["B04"].offset == -1000.0


def test_earth_search_v0_item_of_baseline_02_14(real_data, no_files):
    item = load(real_data, "S2A_28QCH_20200714_0_L2A.json")
    [product] = items_to_products(item, ["B04", "SCL"])
    assert product.processing_baseline == "02.14"  # from sentinel:product_id's N0214
    assert (product.tile_id, product.epsg, product.relative_orbit) == ("28QCH", 32628, 123)
    red = product.bands["B04"]
    assert (red.offset, red.quantification) == (0.0, 10000.0)
    assert red.shape == (10980, 10980) and red.transform.c == 300000.0
    assert list(product.bands) == ["B04", "SCL"]
    assert len(items_to_products(item)[0].bands) == 13  # every band but B10


def test_real_planetary_computer_items_are_signed(real_data, no_files, fake_pc):
    page = load(real_data, "planetary_computer_s2l2a_search_trimmed.json")
    products = items_to_products(page, ["B04", "B8A", "SCL"])
    assert [detect_provider(i) for i in page["features"]] == ["planetary-computer"] * 2
    first = products[0]
    assert first.product_id == "S2A_MSIL2A_20190101T000001_R116_T60VUK_20201007T214652"
    assert (first.tile_id, first.epsg, first.relative_orbit) == ("60VUK", 32660, 116)
    assert first.orbit_direction == "DESCENDING" and first.platform == "S2A"
    assert first.processing_baseline == "02.12"
    red = first.bands["B04"]
    assert (red.offset, red.quantification) == (0.0, 10000.0)  # 02.12: no offset
    assert red.path.startswith("/vsicurl/https://sentinel2l2a01.blob.core.windows.net/")
    assert red.path.endswith(
        "_B04_10m.tif?st=2024-01-01T00%3A00Z&se=2024-01-02T00%3A00Z&sp=rl&sv=2021&sr=c&sig=SECRET"
    )
    assert len(fake_pc) == 2 * 3  # the bands of both items, once each
    # the signature never shows
    for text in (repr(first), repr(red), str(first.bands), first.path):
        assert "SECRET" not in text and "sig=" not in text
    # baseline 04.00 and later: ESA's -1000 (Planetary Computer keeps ESA's DN)
    newer = copy.deepcopy(page["features"][0])
    newer["properties"]["s2:processing_baseline"] = "05.10"
    [product] = items_to_products([newer], ["B04"])
    assert product.bands["B04"].offset == -1000.0


def test_planetary_computer_without_the_extra(real_data, monkeypatch):
    monkeypatch.setitem(sys.modules, "planetary_computer", None)  # import fails
    page = load(real_data, "planetary_computer_s2l2a_search_trimmed.json")
    with pytest.raises(MissingExtraError) as caught:
        items_to_products(page, ["B04"])
    message = str(caught.value)
    assert "S2A_MSIL2A_20190101T000001_R116_T60VUK_20201007T214652" in message
    assert "pip install 'sentinel-cube[pc]'" in message and "planetary-computer" in message
    with pytest.raises(MissingExtraError):
        sc.open_cube(page, bands=["B04"])


def test_signed_planetary_computer_hrefs_are_used_as_they_are(real_data, monkeypatch):
    monkeypatch.setitem(sys.modules, "planetary_computer", None)  # never needed
    item = load(real_data, "planetary_computer_s2l2a_search_trimmed.json")["features"][0]
    for asset in item["assets"].values():
        asset["href"] += "?st=2024&se=2025&sp=rl&sig=ALREADY"
    [product] = items_to_products(item, ["B04"])
    assert product.bands["B04"].path.endswith("_B04_10m.tif?st=2024&se=2025&sp=rl&sig=ALREADY")
    assert "ALREADY" not in repr(product)
    # a products-table record keeps no signature: it is signed again when opened
    record = item_record(item)
    assert "ALREADY" not in record and "sig=" not in record


def test_odc_stac_items_with_raster_bands_but_no_scale(real_data, no_files, fake_pc):
    item = load(real_data, "S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531_raster_ext.json")
    [product] = items_to_products(item, ["B04", "B06", "SCL"])
    red, b06 = product.bands["B04"], product.bands["B06"]
    assert (red.offset, red.quantification, red.nodata) == (0.0, 10000.0, 0)  # baseline 02.12
    assert b06.shape == (5490, 5490) and b06.transform.f == 6800040.0


# ----------------------------------------------------------------------------- CDSE shape


def cdse_item(**overrides) -> dict:
    """A CDSE-STAC-shaped L2A item (STAC 1.1: proj:code, raster:scale, B04_10m keys)."""
    base = (
        "s3://eodata/Sentinel-2/MSI/L2A/2025/03/02/S2B_MSIL2A_20250302T095029_N0511_R079_"
        "T33UXP_20250302T104753.SAFE/GRANULE/L2A_T33UXP_A041234_20250302T095344/IMG_DATA"
    )

    def asset(band, res, **extra):
        size = 109800 // res
        return {
            "href": f"{base}/R{res}m/T33UXP_20250302T095029_{band}_{res}m.jp2",
            "type": "image/jp2",
            "roles": ["data", "reflectance", f"gsd:{res}m"],
            "gsd": res,
            "proj:code": "EPSG:32633",
            "proj:shape": [size, size],
            "proj:transform": [res, 0, 600000, 0, -res, 5400000],
            "alternate": {"https": {"href": "https://download.dataspace.copernicus.eu/x"}},
            **extra,
        }

    scaled = {"raster:scale": 0.0001, "raster:offset": -0.1, "nodata": 0, "data_type": "uint16"}
    item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": "S2B_MSIL2A_20250302T095029_N0511_R079_T33UXP_20250302T104753",
        "collection": "sentinel-2-l2a",
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[15.0, 48.7], [16.5, 48.7], [16.5, 49.7], [15.0, 49.7], [15.0, 48.7]]],
        },  # fmt: skip
        "bbox": [15.0, 48.7, 16.5, 49.7],
        "properties": {
            "datetime": "2025-03-02T09:50:29.024000Z",
            "platform": "sentinel-2b",
            "proj:code": "EPSG:32633",
            "grid:code": "MGRS-33UXP",
            "sat:relative_orbit": 79,
            "sat:orbit_state": "descending",
            "processing:version": "05.11",
            "product:type": "S2MSI2A",
            "eo:cloud_cover": 12.5,
        },
        "assets": {
            "B04_20m": asset("B04", 20, **scaled),
            "B04_10m": asset("B04", 10, **scaled),
            "B04_60m": asset("B04", 60, **scaled),
            "B8A_20m": asset(
                "B8A", 20, bands=[{"name": "B8A", "raster:scale": 0.0001, "raster:offset": -0.1}]
            ),  # fmt: skip
            "SCL_60m": asset("SCL", 60, nodata=0),
            "SCL_20m": asset("SCL", 20, nodata=0),
            "TCI_10m": asset("TCI", 10),
        },
        "links": [
            {
                "rel": "self",
                "href": "https://stac.dataspace.copernicus.eu/v1/collections/"
                "sentinel-2-l2a/items/S2B_MSIL2A_20250302T095029_N0511_R079_T33UXP_"
                "20250302T104753",
            }
        ],  # fmt: skip
    }
    item.update(overrides)
    return item


def test_cdse_shaped_item(no_files):
    item = cdse_item()
    assert detect_provider(item) == "cdse"
    [product] = items_to_products(item, ["B04", "B8A", "SCL"])
    assert list(product.bands) == ["B04", "B8A", "SCL"]  # no TCI: not a band
    red, nir08, scl = (product.bands[b] for b in ("B04", "B8A", "SCL"))
    # native resolution chosen among B04_10m/20m/60m, SCL_20m rather than SCL_60m
    assert red.path.endswith("_B04_10m.jp2") and red.path.startswith("/vsis3/eodata/Sentinel-2/")
    assert scl.path.endswith("_SCL_20m.jp2") and scl.shape == (5490, 5490)
    assert (red.offset, red.quantification) == (-1000.0, 10000.0)  # raster:scale/offset
    assert (nir08.offset, nir08.quantification) == (-1000.0, 10000.0)  # in "bands"
    assert (scl.offset, scl.quantification) == (0.0, 1.0)
    assert (product.epsg, product.tile_id, product.processing_baseline) == (32633, "33UXP", "05.11")
    assert (product.platform, product.relative_orbit) == ("S2B", 79)
    assert product.path.startswith("stac://stac.dataspace.copernicus.eu/sentinel-2-l2a/")


def test_cdse_items_without_s3_keys_fail_clearly(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "CDSE_S3_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SentinelCubeError, match="CDSE_S3_ACCESS_KEY") as caught:
        sc.open_cube([cdse_item()], bands=["B04"], resolution=60)
    assert "S2B_MSIL2A_20250302T095029_N0511_R079_T33UXP_20250302T104753" in str(caught.value)


def test_item_level_grid_is_scaled_to_each_asset_resolution(no_files):
    item = cdse_item()
    for asset in item["assets"].values():
        for key in ("proj:shape", "proj:transform", "proj:code"):
            asset.pop(key)
    item["properties"].update({"proj:shape": [10980, 10980],
                               "proj:transform": [10, 0, 600000, 0, -10, 5400000]})  # fmt: skip
    [product] = items_to_products(item, ["B04", "SCL"])
    assert product.bands["B04"].shape == (10980, 10980)
    assert product.bands["SCL"].shape == (5490, 5490)  # gsd 20: same extent, 20 m pixels
    assert product.bands["SCL"].transform.a == 20


def test_provider_tables():
    assert PROVIDER_ASSET_KEYS["earth-search"]["B8A"] == ("nir08", "nir08-jp2")
    assert PROVIDER_ASSET_KEYS["planetary-computer"]["SCL"] == ("SCL",)
    assert PROVIDER_ASSET_KEYS["cdse"]["B04"][0] == "B04_10m"
    assert PROVIDER_ASSET_KEYS["cdse"]["SCL"][:2] == ("SCL_20m", "SCL_60m")
    # an unknown catalogue: generic keys and eo:bands names
    assets = {"b4": {"href": "a.tif"}, "x": {"href": "b.tif", "eo:bands": [{"name": "B8A"}]},
              "thumbnail": {"href": "t.png", "roles": ["thumbnail"]}}  # fmt: skip
    assert {b: c.key for b, c in band_assets(assets).items()} == {"B04": "b4", "B8A": "x"}


# ----------------------------------------------------------------------------- bad input


def test_missing_band_names_the_item_and_its_assets(real_data, no_files):
    page = load(real_data, "earth_search_v1_s2l2a_search_trimmed.json")
    with pytest.raises(SentinelCubeError) as caught:
        items_to_products(page, ["B04", "B10"])
    message = str(caught.value)
    assert "STAC item 'S2A_13TDE_20231008_0_L2A'" in message
    assert "no asset for band B10" in message
    assert "red (B04)" in message and "nir08 (B8A)" in message and "thumbnail (-)" in message
    with pytest.raises(SentinelCubeError, match="S2A_13TDE_20231008_0_L2A.*B10"):
        sc.open_cube(page, bands=["B04", "B10"])


def test_no_grid_and_unreachable_asset(real_data, tmp_path):
    item = load(real_data, "earth_search_v1_s2l2a_search_trimmed.json")["features"][0]
    item["properties"].pop("proj:epsg")
    for asset in item["assets"].values():
        asset.pop("proj:shape", None)
        asset.pop("proj:transform", None)
        asset["href"] = str(tmp_path / "gone" / Path(asset["href"]).name)
    with pytest.raises(SentinelCubeError) as caught:
        items_to_products([item], ["B04"])
    message = str(caught.value)
    assert "STAC item 'S2A_13TDE_20231008_0_L2A': gives no grid for asset red" in message
    assert "cannot be opened" in message and "add the projection extension" in message


def test_bad_projection_fields(real_data, no_files):
    item = load(real_data, "earth_search_v1_s2l2a_search_trimmed.json")["features"][0]
    other_zone = copy.deepcopy(item)
    other_zone["assets"]["scl"]["proj:epsg"] = 32614
    with pytest.raises(SentinelCubeError, match="different CRSs .*scl EPSG:32614"):
        items_to_products([other_zone], ["B04", "SCL"])
    wkt_only = copy.deepcopy(item)
    wkt_only["properties"]["proj:code"] = "IAU_2015:30100"
    with pytest.raises(SentinelCubeError, match="S2A_13TDE.*not an EPSG code"):
        items_to_products([wkt_only], ["B04"])
    rotated = copy.deepcopy(item)
    rotated["assets"]["red"]["proj:transform"] = [10, 1, 399960, 0, -10, 4500000]
    with pytest.raises(SentinelCubeError, match="asset red: proj:transform .* not a north-up"):
        items_to_products([rotated], ["B04"])


def test_unknown_radiometry_and_time(real_data, no_files, fake_pc):
    item = load(real_data, "planetary_computer_s2l2a_search_trimmed.json")["features"][0]
    for key in ("s2:processing_baseline", "s2:product_uri"):
        item["properties"].pop(key)
    item["id"] = "custom-item"
    with pytest.raises(SentinelCubeError, match="'custom-item'.*radiometry is unknown"):
        items_to_products([item], ["B04"])
    item["properties"]["s2:processing_baseline"] = "04.00"
    item["properties"].pop("datetime")
    with pytest.raises(SentinelCubeError, match="'custom-item': has no datetime"):
        items_to_products([item], ["B04"])


# ----------------------------------------------------------------------------- pixels


def write_cog(source: str, target: Path, *, shift: int = 0) -> None:
    """The band file as a COG with the same DN (``shift`` added to valid DN, as
    Earth Search's harmonised COGs have -1000)."""
    with rasterio.open(source) as src:
        data, profile = src.read(1), src.profile
    if shift:
        valid = (data != 0) & (data != 65535)
        data = data.astype(np.int32)
        data[valid] = np.clip(data[valid] + shift, 0, 65534)
        data = data.astype(np.uint16)
    target.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        target, "w", driver="COG", width=profile["width"], height=profile["height"], count=1,
        dtype="uint16", crs=profile["crs"], transform=profile["transform"], nodata=0,
        blocksize=64, overview_resampling="average",
    ) as dst:  # fmt: skip
        dst.write(data, 1)


ES_KEYS = {"B04": "red", "B08": "nir", "B8A": "nir08", "SCL": "scl"}


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def base_properties(product) -> dict:
    return {
        "datetime": iso(product.sensing_start),
        "platform": f"sentinel-2{product.platform[-1].lower()}",
        "constellation": "sentinel-2",
        "eo:cloud_cover": product.cloud_cover,
        "s2:vegetation_percentage": product.vegetation,
        "s2:water_percentage": product.water,
        "s2:not_vegetated_percentage": product.not_vegetated,
        "s2:snow_ice_percentage": product.snow_ice,
        "s2:product_type": product.producttype,
        "s2:product_uri": product.product_id + ".SAFE",
        "s2:generation_time": iso(product.generation_time),
    }


def grid_fields(band_file) -> dict:
    return {"proj:shape": list(band_file.shape), "proj:transform": list(band_file.transform)[:6]}


def footprint(product) -> dict:
    return json.loads(json.dumps(product.footprint.__geo_interface__))


def es_item(product, folder: Path, *, harmonised: bool, grids: bool = True) -> dict:
    """An Earth-Search-v1-shaped item over COGs of ``product`` (harmonised or ESA's DN)."""
    new = float(product.processing_baseline) >= 4
    shift = -1000 if harmonised and new else 0
    assets = {}
    for band in BANDS:
        source = product.bands[band]
        cog = folder / f"{product.tile_id}_{product.sensing_start:%Y%m%d}_es" / f"{band}.tif"
        write_cog(source.path, cog, shift=0 if band == "SCL" else shift)
        raster = {"nodata": 0, "data_type": "uint16"}
        if band != "SCL":
            raster.update(scale=0.0001, offset=-0.1 if new else 0.0)
        assets[ES_KEYS[band]] = {
            "href": str(cog),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "raster:bands": [raster],
            **(grid_fields(source) if grids else {}),
        }
    props = base_properties(product) | {
        "proj:epsg": product.epsg,
        "mgrs:utm_zone": int(product.tile_id[:2]),
        "mgrs:latitude_band": product.tile_id[2],
        "mgrs:grid_square": product.tile_id[3:],
        "grid:code": f"MGRS-{product.tile_id}",
        "s2:processing_baseline": product.processing_baseline,
        "earthsearch:boa_offset_applied": harmonised and new,
    }
    if not grids:
        props.pop("proj:epsg")
    item_id = f"{product.platform}_{product.tile_id}_{product.sensing_start:%Y%m%d}_0_L2A"
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id,
            "collection": "sentinel-2-l2a", "geometry": footprint(product),
            "bbox": list(product.footprint.bounds), "properties": props, "assets": assets,
            "links": []}  # fmt: skip


def pc_item(product, folder: Path) -> dict:
    """A Planetary-Computer-shaped item (ESA names, no raster:bands scale) over COGs."""
    assets = {}
    for band in BANDS:
        source = product.bands[band]
        cog = folder / f"{product.product_id}.SAFE" / f"{band}_{source.resolution}m.tif"
        write_cog(source.path, cog)
        assets[band] = {"href": str(cog), "type": "image/tiff; application=geotiff",
                        "roles": ["data"], "proj:bbox": list(source.bounds),
                        "proj:shape": list(source.shape)}  # fmt: skip
    props = base_properties(product) | {
        "proj:epsg": product.epsg,
        "s2:mgrs_tile": product.tile_id,
        "sat:relative_orbit": product.relative_orbit,
        "sat:orbit_state": "descending",
        "s2:processing_baseline": product.processing_baseline,
    }
    item_id = "_".join(p for p in product.product_id.split("_") if not p.startswith("N0"))
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id,
            "collection": "sentinel-2-l2a", "geometry": footprint(product),
            "properties": props, "assets": assets}  # fmt: skip


def cdse_item_of(product) -> dict:
    """A CDSE-shaped item over ``product``'s own JP2 files (as CDSE serves ESA's files)."""
    assets = {}
    for band in BANDS:
        source = product.bands[band]
        extra = {} if band == "SCL" else {"raster:scale": 0.0001,
                                          "raster:offset": source.offset / 10000}  # fmt: skip
        assets[f"{band}_{source.resolution}m"] = {
            "href": source.path, "type": "image/jp2", "roles": ["data"],
            "proj:code": f"EPSG:{product.epsg}", **grid_fields(source), "nodata": 0, **extra,
        }  # fmt: skip
    props = base_properties(product) | {
        "proj:code": f"EPSG:{product.epsg}",
        "grid:code": f"MGRS-{product.tile_id}",
        "processing:version": product.processing_baseline,
    }
    return {"type": "Feature", "stac_version": "1.1.0", "id": product.product_id,
            "collection": "sentinel-2-l2a", "geometry": footprint(product),
            "properties": props, "assets": assets}  # fmt: skip


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Two tiles x two dates: baseline 03.01 (2021, no offset) and 05.09 (2023, -1000),
    with their items in the three provider shapes."""
    root = tmp_path_factory.mktemp("stac-archive")
    specs = default_specs(dates=("2021-08-10", "2023-08-10"))
    paths = make_archive(root / "safe", specs, scale=61, bands=BANDS)
    products = [sc.read_product(p, require_bands=BANDS) for p in paths]
    cogs = root / "cogs"
    return {
        "paths": paths,
        "products": products,
        "es": [es_item(p, cogs, harmonised=False) for p in products],
        "es_harmonised": [es_item(p, cogs / "h", harmonised=True) for p in products],
        "pc": [pc_item(p, cogs) for p in products],
        "cdse": [cdse_item_of(p) for p in products],
        "root": root,
    }


def same_cube(a: xr.DataArray, b: xr.DataArray) -> None:
    assert a.dims == b.dims and a.shape == b.shape and a.dtype == b.dtype
    for name in ("time", "band", "x", "y"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert a.rio.crs == b.rio.crs
    np.testing.assert_array_equal(a.values, b.values)  # NaN == NaN here


@pytest.mark.parametrize("shape", ["es", "es_harmonised", "pc", "cdse"])
def test_items_give_the_cube_of_the_safe_products(archive, shape, fake_pc, monkeypatch):
    safe = {u: sc.open_cube(archive["paths"], bands=BANDS, resolution=RES, units=u)
            for u in ("reflectance", "dn")}  # fmt: skip
    opened = []
    monkeypatch.setattr(
        "sentinel_cube.stac._items.read_file_grid", lambda *a, **k: opened.append(a)
    )
    for units in ("reflectance", "dn"):
        cube = sc.open_cube(archive[shape], bands=BANDS, resolution=RES, units=units)
        assert not opened  # grids from the projection extension only
        same_cube(cube, safe[units])
        assert list(cube.product_id.values) == [
            ",".join(i["id"] for i in archive[shape] if i["properties"]["datetime"][:4] == y)
            for y in ("2021", "2023")
        ]
        np.testing.assert_array_equal(cube.processingbaseline.values, ["03.01", "05.09"])
        np.testing.assert_allclose(
            cube.cloudcoverpercentage.values, safe[units].cloudcoverpercentage.values
        )
    assert not fake_pc  # local hrefs: nothing to sign


def test_pystac_objects_and_feature_collections(archive):
    dicts = archive["es"]
    items = [pystac.Item.from_dict(copy.deepcopy(d)) for d in dicts]
    collection = pystac.ItemCollection(items)
    feature_collection = {"type": "FeatureCollection", "features": dicts}
    expected = sc.open_cube(dicts, bands=["B04"], resolution=RES)
    for source in (items, collection, feature_collection, collection.to_dict()):
        same_cube(sc.open_cube(source, bands=["B04"], resolution=RES), expected)
    # a list may mix .SAFE paths and items
    mixed = to_products([archive["paths"][0], dicts[1]], ["B04"])
    assert [p.path.startswith("stac://") for p in mixed] == [False, True]


def test_mixed_providers_and_baselines_have_consistent_reflectance(archive):
    """2021 products (03.01) from Planetary Computer, 2023 ones (05.09) from Earth Search's
    harmonised COGs and from CDSE's JP2 files, in one cube: the reflectance of the
    .SAFE products, whatever the provider's DN convention."""
    items = archive["pc"][:2] + [archive["es_harmonised"][2], archive["cdse"][3]]
    for units in ("reflectance", "dn"):
        cube = sc.open_cube(items, bands=BANDS, resolution=RES, units=units)
        same_cube(cube, sc.open_cube(archive["paths"], bands=BANDS, resolution=RES, units=units))
    harmonised = items_to_products([archive["es_harmonised"][2]], ["B04"])[0].bands["B04"]
    raw = items_to_products([archive["es"][2]], ["B04"])[0].bands["B04"]
    assert (harmonised.offset, raw.offset) == (0.0, -1000.0)
    with rasterio.open(harmonised.path) as h, rasterio.open(raw.path) as r:
        shifted, original = h.read(1), r.read(1)
    valid = original > 0
    np.testing.assert_array_equal(shifted[valid], original[valid] - 1000)


def test_operations_run_on_an_item_cube(archive, tmp_path):
    items = archive["es"]
    cube = sc.open_cube(items, bands=["B04", "B08"], resolution=RES)
    safe = sc.open_cube(archive["paths"], bands=["B04", "B08"], resolution=RES)
    # mask_clouds reads SCL through the products' paths: the items' Products, remembered
    assert registered(cube.product_path.values[0].split("\n")[0]) is not None
    same_cube(sc.mask_clouds(cube), sc.mask_clouds(safe))
    aoi = (19.2, 47.3, 19.6, 47.7)
    same_cube(sc.clip(cube, aoi), sc.clip(safe, aoi))
    stretched = sc.stretch(cube, percentiles=(2, 98))
    np.testing.assert_array_equal(stretched.values, sc.stretch(safe, percentiles=(2, 98)).values)
    yearly = sc.aggregate(cube, freq="YS", how="median", mask="scl")
    np.testing.assert_array_equal(
        yearly.values, sc.aggregate(safe, freq="YS", how="median", mask="scl").values
    )
    sc.to_zarr(cube, tmp_path / "items.zarr", progress=False)
    stored = sc.open_zarr(tmp_path / "items.zarr")
    np.testing.assert_array_equal(stored.values, safe.values)


def test_products_table_of_a_stac_search(archive, fake_pc):
    """STACCatalog's products table keeps each item (stac_item): open_cube reads it."""
    frame = stac_products_frame(archive["pc"], "stac:https://example.org/stac")
    assert frame["stac_item"].notna().all() and "path" in frame.columns
    cube = sc.open_cube(frame, bands=BANDS, resolution=RES)
    same_cube(cube, sc.open_cube(archive["paths"], bands=BANDS, resolution=RES))


def test_items_without_grids_read_headers_once_per_resolution(archive, monkeypatch):
    items = [es_item(p, archive["root"] / "nogrid", harmonised=False, grids=False)
             for p in archive["products"]]  # fmt: skip
    from sentinel_cube.safe import _georef

    opened = []

    def counting(path, *args, **kwargs):
        opened.append(path)
        return _georef.read_file_grid(path, *args, **kwargs)

    monkeypatch.setattr("sentinel_cube.stac._items.read_file_grid", counting)
    with pytest.warns(sc.SentinelCubeWarning, match="4 STAC item.*headers, one asset per"):
        cube = sc.open_cube(items, bands=BANDS, resolution=RES)
    assert len(opened) == 4 * 2  # each item: one 10 m and one 20 m asset
    same_cube(cube, sc.open_cube(archive["paths"], bands=BANDS, resolution=RES))


@pytest.fixture()
def empty_http(tmp_path):
    """A loopback HTTP server of an empty folder (every file 404s): its base URL."""
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_an_href_that_404s_names_the_item(archive, empty_http):
    item = copy.deepcopy(archive["es"][2])
    for asset in item["assets"].values():
        asset["href"] = f"{empty_http}/gone/{Path(asset['href']).name}"
    cube = sc.open_cube([item], bands=["B04"], resolution=RES)  # metadata only: fine
    with pytest.raises(ProductError) as caught:
        cube.compute()
    message = str(caught.value)
    assert message.startswith(item["id"] + ":")
    assert "does not exist" in message and "search the catalogue again" in message


def test_items_in_two_utm_zones_follow_the_safe_rule(tmp_path, monkeypatch):
    """Items of tiles in two UTM zones: like .SAFE products, the cube takes the zone
    holding most of the footprints (or ``crs=``) and reprojects the others."""
    from sentinel_cube._plan import plan_cube

    specs = default_specs(tiles=ZONE_BOUNDARY_TILES, dates=["2023-08-10"], partial=None)
    paths = make_archive(tmp_path, specs, scale=61, bands=BANDS)
    products = [sc.read_product(p, require_bands=BANDS) for p in paths]
    items = [cdse_item_of(p) for p in products]
    refuse_files(monkeypatch)
    converted = items_to_products(items, ["B04"])
    assert [p.epsg for p in converted] == [32633, 32634]
    for crs in (None, "EPSG:32633", "EPSG:32634"):
        from_items = plan_cube(converted, ["B04"], RES, crs=crs)
        assert from_items.grid == plan_cube(products, ["B04"], RES, crs=crs).grid
    cube = sc.open_cube(items, bands=["B04"], resolution=RES, crs="EPSG:32633")
    assert cube.rio.crs.to_epsg() == 32633


def test_stac_paths_are_resolved_in_this_process_only():
    with pytest.raises(SentinelCubeError, match="not opened in this process"):
        to_products(["stac://example.org/sentinel-2-l2a/never-seen"])


def test_a_stac_search_is_read_in_place_over_http(tmp_path_factory):
    """STACCatalog.search -> products table -> open_cube: the JP2 assets are read from
    the (loopback) STAC server over HTTP, as the .SAFE zips read locally."""
    from _stac_server import STACServer
    from sentinel_cube.catalog._http import RetryPolicy
    from sentinel_cube.testing import served_archive

    zips = served_archive(tmp_path_factory.getbasetemp() / "catalog-archive")
    with STACServer(zips) as server:
        catalog = sc.STACCatalog(server.url, retry=RetryPolicy(attempts=2, backoff=0.01))
        products = catalog.search()
        assert len(products) == len(zips)
        assert products["path"].isna().all() and products["stac_item"].notna().all()
        cube = sc.open_cube(products, bands=["B04", "B8A", "SCL"], resolution=RES)
        assert cube.product_path.values[0].startswith("stac://127.0.0.1/sentinel-2-l2a/")
        computed = cube.compute()
        assert server.requests_to("/data/")  # pixels came over HTTP
    expected = sc.open_cube(zips, bands=["B04", "B8A", "SCL"], resolution=RES)
    same_cube(computed, expected.compute())


def test_items_without_band_assets_and_other_inputs(real_data, no_files):
    item = load(real_data, "earth_search_v1_s2l2a_search_trimmed.json")["features"][0]
    bare = {**item, "assets": {"thumbnail": item["assets"]["thumbnail"]}}
    with pytest.raises(SentinelCubeError, match="'S2A_13TDE_20231008_0_L2A': has no band asset"):
        items_to_products([bare])
    with pytest.raises(SentinelCubeError, match="expected paths, Products or STAC items"):
        sc.open_cube([item, 42], bands=["B04"])
    with pytest.raises(SentinelCubeError, match="STAC items"):
        sc.open_cube(42, bands=["B04"])
    # an unknown band name is left to planning, which names it
    with pytest.raises(SentinelCubeError, match="unknown Sentinel-2 band 'NDVI'"):
        sc.open_cube([item], bands=["NDVI"])


def test_signed_urls_stay_out_of_errors_and_logs(archive, empty_http, caplog):
    item = copy.deepcopy(archive["es"][2])
    for asset in item["assets"].values():
        name = Path(asset["href"]).name
        asset["href"] = f"{empty_http}/gone/{name}?st=2024&se=2025&sp=rl&sig=TOPSECRET"
    cube = sc.open_cube([item], bands=["B04"], resolution=RES)
    assert "TOPSECRET" not in repr(cube) and "TOPSECRET" not in str(cube.coords)
    with caplog.at_level("DEBUG"), pytest.raises(ProductError) as caught:
        cube.compute()
    chain = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    assert item["id"] in chain[0] and "does not exist" in chain[0]
    assert not any("TOPSECRET" in text for text in chain)
    assert not any("TOPSECRET" in r.getMessage() for r in caplog.records)
    # GDAL's own messages (rasterio logs them) lose the query string of the URLs they name
    import logging

    with caplog.at_level("WARNING", logger="rasterio._env"):
        logging.getLogger("rasterio._env").warning(
            "HTTP response code on %s: 403", "https://a.blob.core.windows.net/c/x.tif?sig=S1"
        )
    logged = caplog.records[-1].getMessage()
    assert logged.startswith("HTTP response code on https://a.blob.core.windows.net/c/x.tif")
    assert "sig=" not in logged and "S1" not in logged
