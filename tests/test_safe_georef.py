"""Band grids of products without ``MTD_TL.xml`` come from the band files' georeferencing.

The products are written by the synthetic generator with their tile corner moved off
the MGRS rule (as real tiles are, by tens of metres), so a reader that guessed the
grid from the tile id would be caught. Expected grids are read back with rasterio.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from sentinel_cube import mgrs
from sentinel_cube.exceptions import ProductError, SentinelCubeError
from sentinel_cube.safe import read_product
from sentinel_cube.testing import ProductSpec, make_product

TILE = "34TCT"
#: Shift of the tile corner off the MGRS rule, in metres (east, north).
SHIFT = (20.0, -60.0)
SCALE = 61  # 180 px at 10 m: tiny files


def _spec(level: str = "L2A") -> ProductSpec:
    x, y = mgrs.tile_origin(TILE)
    return ProductSpec(
        TILE, "2023-08-10T09:45:49.024Z", level=level, corner=(x + SHIFT[0], y + SHIFT[1])
    )


def _drop_tile_metadata(path: Path) -> None:
    """Delete ``GRANULE/*/MTD_TL.xml`` from a product folder or zip."""
    if path.is_dir():
        (found,) = path.glob("GRANULE/*/MTD_TL.xml")
        found.unlink()
        return
    part = path.with_name(path.name + ".part")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(part, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith("/MTD_TL.xml"):
                dst.writestr(info, src.read(info), compress_type=info.compress_type)
    os.replace(part, path)


@pytest.fixture(scope="module")
def products(tmp_path_factory) -> dict[tuple[str, bool], Path]:
    """L1C and L2A products, as folders and zips, whose MTD_TL.xml was deleted."""
    root = tmp_path_factory.mktemp("georef")
    made = {}
    for level in ("L1C", "L2A"):
        for zipped in (False, True):
            bands = ["B02", "B05", "B01"] if level == "L2A" else ["B04", "B11", "B10"]
            path = make_product(
                root / f"{level}-{zipped}", _spec(level), scale=SCALE, bands=bands, zipped=zipped
            )
            _drop_tile_metadata(path)
            made[level, zipped] = path
    return made


@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("level", ["L1C", "L2A"])
def test_grid_comes_from_the_band_files(products, level, zipped):
    p = read_product(products[level, zipped], require_bands=None)
    assert len(p.bands) == 3 and {bf.resolution for bf in p.bands.values()} == {10, 20, 60}
    rule_x, rule_y = mgrs.tile_origin(TILE)
    for bf in p.bands.values():
        with rasterio.open(bf.path) as ds:
            assert bf.transform == ds.transform
            assert bf.shape == ds.shape
            assert ds.crs.to_epsg() == p.epsg
        # The MGRS rule would have been wrong by the shift.
        assert (bf.transform.c - rule_x, bf.transform.f - rule_y) == SHIFT
        assert bf.transform.a == bf.resolution * SCALE


def test_files_are_opened_once_per_resolution(products, monkeypatch):
    opened: list[str] = []
    real_open = rasterio.open

    def counting_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(rasterio, "open", counting_open)
    p = read_product(products["L2A", True], require_bands=None)
    assert len(opened) == len({bf.resolution for bf in p.bands.values()}) == 3


def test_with_tile_metadata_no_band_file_is_opened(tmp_path, monkeypatch):
    path = make_product(tmp_path, _spec(), scale=SCALE, bands=["B02", "B05"])

    def refuse(*args, **kwargs):
        raise AssertionError("a band file was opened although MTD_TL.xml is present")

    monkeypatch.setattr(rasterio, "open", refuse)
    p = read_product(path, require_bands=None)
    assert p.band("B02").transform.c == mgrs.tile_origin(TILE)[0] + SHIFT[0]


def _write_tiff(path: Path, crs: str | None, transform: Affine | None, size: int = 4) -> None:
    profile: dict = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint16")
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **profile) as ds:
        ds.write(np.ones((1, size, size), "uint16"))


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_band_files_without_georeferencing_are_named(tmp_path):
    path = make_product(tmp_path, _spec("L1C"), scale=SCALE, bands=["B04"])
    _drop_tile_metadata(path)
    (b04,) = path.glob("GRANULE/*/IMG_DATA/*_B04.jp2")
    _write_tiff(b04, None, None)
    with pytest.raises(ProductError) as info:
        read_product(path, require_bands=None)
    message = str(info.value)
    assert str(path) in message and b04.name in message
    assert "MTD_TL.xml" in message and "georeferenc" in message
    assert "download the product again" in message
    assert isinstance(info.value, SentinelCubeError)


def test_band_file_in_another_crs_is_refused(tmp_path):
    path = make_product(tmp_path, _spec("L1C"), scale=SCALE, bands=["B04"])
    _drop_tile_metadata(path)
    (b04,) = path.glob("GRANULE/*/IMG_DATA/*_B04.jp2")
    _write_tiff(b04, "EPSG:32633", Affine(10, 0, 300000, 0, -10, 5300040))
    with pytest.raises(ProductError, match="EPSG:32633.*EPSG:32634|EPSG:32634.*EPSG:32633"):
        read_product(path, require_bands=None)


def test_unreadable_band_file_is_named(tmp_path):
    path = make_product(tmp_path, _spec("L1C"), scale=SCALE, bands=["B04"])
    _drop_tile_metadata(path)
    (b04,) = path.glob("GRANULE/*/IMG_DATA/*_B04.jp2")
    b04.write_bytes(b"<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(ProductError) as info:
        read_product(path, require_bands=None)
    assert b04.name in str(info.value) and "download the product again" in str(info.value)


def test_metadata_only_product_needs_no_band_file(tmp_path):
    path = make_product(tmp_path, _spec("L1C"), scale=SCALE, bands=["B04"])
    _drop_tile_metadata(path)
    shutil.rmtree(next(path.glob("GRANULE/*/IMG_DATA")))
    p = read_product(path, require_bands=None)
    assert p.bands == {} and "B04" in p.missing_bands
