"""Independent expectations for cube tests: plain rasterio reads and regexes on the XML."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.warp import reproject

SPECTRAL = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
            "B12")  # fmt: skip


def band_file(safe: Path, band: str) -> Path:
    """The band's JP2 at its native resolution, found by name in the SAFE folder."""
    native = {"B05", "B06", "B07", "B8A", "B11", "B12", "SCL"}
    suffix = "_20m.jp2" if band in native else "_10m.jp2"
    if band in {"B01", "B09"}:
        suffix = "_60m.jp2"
    hits = sorted(Path(safe).glob(f"GRANULE/*/IMG_DATA/**/*_{band}{suffix}"))
    hits = hits or sorted(Path(safe).glob(f"GRANULE/*/IMG_DATA/*_{band}.jp2"))
    assert len(hits) == 1, (safe, band, hits)
    return hits[0]


def radiometry(safe: Path, band: str) -> tuple[float, float]:
    """(offset, quantification) of a band, read from the product MTD with regexes."""
    text = next(Path(safe).glob("MTD_MSIL*.xml")).read_text()
    index = SPECTRAL.index(band)
    match = re.search(rf'(?:BOA|RADIO)_ADD_OFFSET band_id="{index}">(-?\d+)<', text)
    offset = float(match.group(1)) if match else 0.0
    quant = re.search(r"<(?:BOA_)?QUANTIFICATION_VALUE[^>]*>([\d.]+)<", text)
    return offset, float(quant.group(1))


def to_reflectance(dn: np.ndarray, offset: float, quantification: float) -> np.ndarray:
    values = (dn.astype(np.float32) + np.float32(offset)) / np.float32(quantification)
    values[(dn == 0) | (dn == 65535)] = np.nan
    return values


def native_dn(path: Path, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """DN of the JP2 pixels containing the map points (x[j], y[i]), 0 outside the file."""
    with rasterio.open(path) as src:
        data = src.read(1)
    cols = np.floor((x - src.transform.c) / src.transform.a).astype(int)
    rows = np.floor((y - src.transform.f) / src.transform.e).astype(int)
    out = np.zeros((len(y), len(x)), np.uint16)
    rin = (rows >= 0) & (rows < data.shape[0])
    cin = (cols >= 0) & (cols < data.shape[1])
    out[np.ix_(rin, cin)] = data[np.ix_(rows[rin], cols[cin])]
    return out


def nearest_dn(path: Path, grid_transform, grid_crs, shape) -> np.ndarray:
    """Nearest-neighbour reprojection by definition, with pyproj and numpy only.

    Each output pixel takes the source pixel that contains its centre
    transformed into the source CRS (0 outside the source).
    """
    with rasterio.open(path) as src:
        data, transform, crs = src.read(1), src.transform, src.crs
    rows, cols = np.meshgrid(np.arange(shape[0]) + 0.5, np.arange(shape[1]) + 0.5, indexing="ij")
    x = grid_transform.c + cols * grid_transform.a
    y = grid_transform.f + rows * grid_transform.e
    sx, sy = Transformer.from_crs(grid_crs, crs, always_xy=True).transform(x, y)
    c = np.floor((sx - transform.c) / transform.a).astype(int)
    r = np.floor((sy - transform.f) / transform.e).astype(int)
    inside = (c >= 0) & (c < data.shape[1]) & (r >= 0) & (r < data.shape[0])
    out = np.zeros(shape, np.uint16)
    out[inside] = data[r[inside], c[inside]]
    return out


def gdal_reproject_dn(path: Path, grid_transform, grid_crs, shape) -> np.ndarray:
    """rasterio.warp.reproject of the whole band onto the grid (GDAL defaults, nearest)."""
    out = np.zeros(shape, np.uint16)
    with rasterio.open(path) as src:
        reproject(
            src.read(1), out, src_transform=src.transform, src_crs=src.crs, src_nodata=0,
            dst_transform=grid_transform, dst_crs=grid_crs, dst_nodata=0,
            resampling=Resampling.nearest,
        )  # fmt: skip
    return out
