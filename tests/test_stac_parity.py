"""STAC items as cube sources (issue #12): the same pixels as the ``.SAFE`` products.

The archive of ``tests/_stac_fixtures.py`` (two tiles, two dates on both sides of
processing baseline 04.00, a swath edge) is published as Earth Search (COGs),
Planetary Computer (COGs, no scale/offset in the items) and CDSE (the ``.SAFE``
folder's JP2 files) publish Sentinel-2, over the loopback HTTP server and on moto's
S3. Expected cubes are ``open_cube`` of the same ``.SAFE`` folders; odc-stac on the
same items gives the same DN on the tile's own grid.

The tests that call ``open_cube`` on items skip until issue #12's API is there; what
they assume of it is written (and adjustable) in ``tests/_stac_api.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from _s3 import BUCKET
from _stac_api import open_items, require_stac_api
from _stac_fixtures import RESOLUTION, harmonised
from _stac_server import STACServer
from sentinel_cube.catalog._stac import STACCatalog
from sentinel_cube.cube import open_cube
from sentinel_cube.safe import read_product
from sentinel_cube.testing.stac import PROVIDERS, stac_items

BANDS = ["B04", "B8A", "SCL"]
TILE = "34TCT"
#: Each provider's asset key of each compared band (what odc-stac is asked for).
ASSET_KEYS = {
    "earth_search": {"B04": "red", "B8A": "nir08", "SCL": "scl"},
    "planetary_computer": {"B04": "B04", "B8A": "B8A", "SCL": "SCL"},
    "cdse": {"B04": "B04_10m", "B8A": "B8A_20m", "SCL": "SCL_20m"},
}


def _tile_grid(safe) -> dict:
    """``bounds`` and ``crs`` of tile 34TCT's own 10 m x scale grid."""
    product = read_product(next(p for p in safe if f"_T{TILE}_" in p.name))
    return {"bounds": product.bands["B04"].bounds, "crs": f"EPSG:{product.epsg}"}


def _cube_kwargs(safe, units: str = "dn") -> dict:
    return {"bands": BANDS, "resolution": RESOLUTION, "units": units, **_tile_grid(safe)}


def _assert_same_cube(got, expected, units: str) -> None:
    assert got.dims == expected.dims and got.shape == expected.shape
    for name in ("time", "band", "y", "x"):
        assert np.array_equal(got[name].values, expected[name].values), name
    if units == "dn":
        assert got.dtype == expected.dtype
        assert np.array_equal(got.values, expected.values)
    else:
        np.testing.assert_array_equal(np.isnan(got.values), np.isnan(expected.values))
        np.testing.assert_allclose(got.values, expected.values, rtol=0, atol=1e-6)
    assert np.count_nonzero(np.nan_to_num(expected.values)) > expected.size // 4


@pytest.fixture(scope="module")
def safe_cubes(stac_published):
    """``open_cube`` of the ``.SAFE`` folders on tile 34TCT's grid, by units."""
    safe = stac_published.safe
    return {units: open_cube(safe, **_cube_kwargs(safe, units)).compute()
            for units in ("dn", "reflectance")}  # fmt: skip


@pytest.fixture(scope="module")
def s3_items(stac_published, s3_server):
    """Items of the trees uploaded to moto's S3: CDSE's under ``s3://eodata``, Earth
    Search's under ``s3://products/earth-search``."""
    s3_server.create_bucket("eodata")
    cdse = s3_server.upload_tree(stac_published.root / "cdse", bucket="eodata")
    earth = s3_server.upload_tree(stac_published.root / "earth_search", BUCKET, "earth-search")
    return {
        "cdse": stac_items(stac_published.safe, "cdse", cdse),
        "earth_search": stac_items(stac_published.safe, "earth_search", earth),
    }


# ----------------------------------------------------------------- (a) items vs SAFE


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("units", ["dn", "reflectance"])
def test_items_over_http_give_the_safe_cube(stac_published, safe_cubes, name, units):
    require_stac_api()
    items = stac_published.items[name]
    got = open_items(items, **_cube_kwargs(stac_published.safe, units)).compute()
    _assert_same_cube(got, safe_cubes[units], units)


@pytest.mark.parametrize("name", ["cdse", "earth_search"])
def test_items_on_s3_give_the_safe_cube(stac_published, safe_cubes, s3_items, s3_env, name):
    require_stac_api()
    start = len(s3_env.log)
    got = open_items(s3_items[name], **_cube_kwargs(stac_published.safe)).compute()
    _assert_same_cube(got, safe_cubes["dn"], "dn")
    reads = [r for r in s3_env.log[start:] if r.method == "GET"]
    assert reads and all(r.range for r in reads if r.path.endswith((".jp2", ".tif")))


def test_every_container_of_items_gives_the_same_cube(stac_published, safe_cubes):
    require_stac_api()
    import pystac

    items = stac_published.items["earth_search"]
    kwargs = _cube_kwargs(stac_published.safe)
    containers = {
        "pystac items": [pystac.Item.from_dict(i) for i in items],
        "ItemCollection": pystac.ItemCollection([pystac.Item.from_dict(i) for i in items]),
    }
    with STACServer(items=items) as server:
        containers["STACCatalog table"] = STACCatalog(server.url).search(
            date=("2021-01-01", "2023-12-31")
        )
        for label, container in containers.items():
            got = open_items(container, **kwargs).compute()
            assert np.array_equal(got.values, safe_cubes["dn"].values), label


def test_pre_0400_items_are_brought_to_the_offset_convention(stac_published, safe_cubes):
    """DN of a baseline 03.01 product read from items carry +1000 in ``units="dn"``,
    whether the item says so (Earth Search offset 0) or only its baseline does (PC)."""
    require_stac_api()
    old = [i for i, p in enumerate(stac_published.safe)
           if read_product(p).processing_baseline < "04.00"]  # fmt: skip
    assert old
    expected = safe_cubes["dn"]
    for name in ("earth_search", "planetary_computer"):
        items = [stac_published.items[name][i] for i in old]
        got = open_items(items, **_cube_kwargs(stac_published.safe)).compute()
        first = expected.sel(time=got.time.values)
        assert np.array_equal(got.values, first.values), name


# -------------------------------------------------------- (b) odc-stac on the same items


def _odc_dn(odc_dn, items: list[dict], keys: dict[str, str], cube) -> dict[str, np.ndarray]:
    """odc-stac's DN of ``items`` on ``cube``'s grid, one ``(time, y, x)`` array per band."""
    grid = (cube.shape[-2:], list(cube.rio.transform())[:6], str(cube.rio.crs))
    return {band: odc_dn(items, key, *grid, "uint8" if band == "SCL" else "uint16")
            for band, key in keys.items()}  # fmt: skip


def _raw_dn(cube, safe) -> np.ndarray:
    """The file DN of a ``units="dn"`` cube: the +1000 of pre-04.00 products taken off.

    Products are found by sensing day (an item cube's ids are the items' ids)."""
    raw = cube.values.astype(np.int32)
    spectral = [i for i, b in enumerate(cube.band.values) if b != "SCL"]
    for t, when in enumerate(cube.time.values):
        day = np.datetime_as_string(when, unit="D").replace("-", "")
        product = read_product(next(p for p in safe if f"_{day}T" in p.name))
        if product.bands["B04"].offset == 0:
            valid = raw[t, spectral] > 0
            raw[t, spectral] = np.where(valid, raw[t, spectral] - 1000, 0)
    return raw


def _as_published(raw: np.ndarray, cube, items: list[dict]) -> np.ndarray:
    """The DN the provider's files hold: Earth Search's COGs with the offset applied to
    the pixels (``earthsearch:boa_offset_applied``), valid DN kept >= 1."""
    out = raw.copy()
    spectral = [i for i, b in enumerate(cube.band.values) if b != "SCL"]
    for t, when in enumerate(cube.time.values):
        day = np.datetime_as_string(when, unit="D")
        item = next(i for i in items if i["properties"]["datetime"].startswith(day))
        if item["properties"].get("earthsearch:boa_offset_applied"):
            out[t, spectral] = harmonised(out[t, spectral])
    return out


@pytest.mark.parametrize("ours", ["safe", "items"])
@pytest.mark.parametrize("name", PROVIDERS)
def test_odc_stac_gives_the_same_dn_on_the_native_grid(stac_published, odc_dn, name, ours):
    safe = [p for p in stac_published.safe if f"_T{TILE}_" in p.name]
    items = [i for i in stac_published.items[name] if TILE in i["id"]]
    kwargs = {**_cube_kwargs(safe), "groupby": "solar_day"}
    if ours == "items":
        require_stac_api()
        cube = open_items(items, **kwargs).compute()
    else:
        cube = open_cube(safe, **kwargs).compute()
    raw = _as_published(_raw_dn(cube, safe), cube, items)
    theirs = _odc_dn(odc_dn, items, ASSET_KEYS[name], cube)
    for b, band in enumerate(cube.band.values):
        mine, other = raw[:, b], theirs[str(band)].astype(np.int32)
        assert mine.shape == other.shape, band
        both = (mine > 0) & (other > 0)
        assert both.sum() > mine.size // 4, f"{band}: too few pixels valid in both"
        assert np.array_equal(mine[both], other[both]), f"{name} {band}"
        assert np.array_equal(mine > 0, other > 0), f"{name} {band}: not the same valid pixels"
