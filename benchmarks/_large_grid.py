"""The grid of ``compare_large.py`` and the pixels every tool must produce identically.

Pure planning from the products' metadata (``compare_ingest._product_info`` dicts):
the target CRS, the cube's grid, the tiles lying on it without resampling, and the
*exact region* mask. No pixel is read here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.features import rasterize
from shapely.geometry import box, shape
from shapely.ops import unary_union

__all__ = ["EDGE_PIXELS", "exact_mask", "plan_grid", "target_epsg"]

#: Pixels around a reprojected footprint's edge left out of the exact comparison.
EDGE_PIXELS = 2


def target_epsg(products: list[dict[str, Any]]) -> int:
    """The UTM zone (of the products' zones) holding most of the union of the footprints.

    Areas are compared in degrees squared: the zones' strips lie at the same latitudes.
    """
    union = unary_union([shape(p["geometry"]) for p in products])

    def area_in_zone(epsg: int) -> float:
        zone = epsg % 100
        west = -180.0 + 6.0 * (zone - 1)
        return float(union.intersection(box(west, -90.0, west + 6.0, 90.0)).area)

    return max(sorted({p["epsg"] for p in products}), key=area_in_zone)


def _footprint(tile: dict[str, Any], epsg: int) -> Any:
    """The tile's extent as a polygon in ``epsg``, edges densified before reprojecting."""
    outline = box(*tile["bounds"])
    if tile["epsg"] == epsg:
        return outline
    to_target = Transformer.from_crs(tile["epsg"], epsg, always_xy=True)
    return shapely.transform(shapely.segmentize(outline, 1000.0), to_target.transform,
                             interleaved=False)  # fmt: skip


def plan_grid(products: list[dict[str, Any]], epsg: int) -> dict[str, Any]:
    """The cube's grid in ``epsg`` and which tiles lie on it without resampling.

    Pixels of the products' 10 m band size, aligned to the corner of the first tile (in
    mosaic order) of the target zone; bounds: the union of the tiles' footprints,
    snapped outwards. ``tiles``: one entry per tile in mosaic order, ``aligned`` when
    its grid coincides with the cube's.
    """
    res = products[0]["resolution"]
    tiles: dict[str, dict[str, Any]] = {}
    for product in products:
        tiles.setdefault(product["tile"], {"tile": product["tile"], "epsg": product["epsg"],
                                           "bounds": product["bounds"]})  # fmt: skip
    anchor = next((t for t in tiles.values() if t["epsg"] == epsg), None)
    if anchor is None:
        raise SystemExit(f"no tile in the target zone EPSG:{epsg}")
    x0, y0 = anchor["bounds"][0], anchor["bounds"][3]
    shapes = [_footprint(t, epsg) for t in tiles.values()]
    left = min(s.bounds[0] for s in shapes)
    bottom = min(s.bounds[1] for s in shapes)
    right = max(s.bounds[2] for s in shapes)
    top = max(s.bounds[3] for s in shapes)
    left = x0 - math.ceil(round((x0 - left) / res, 6)) * res
    top = y0 + math.ceil(round((top - y0) / res, 6)) * res
    width = math.ceil(round((right - left) / res, 6))
    height = math.ceil(round((top - bottom) / res, 6))

    def on_grid(value: float, origin: float) -> bool:
        return abs((value - origin) / res - round((value - origin) / res)) < 1e-6

    for tile in tiles.values():
        tile["aligned"] = (tile["epsg"] == epsg and on_grid(tile["bounds"][0], x0)
                           and on_grid(tile["bounds"][3], y0))  # fmt: skip
    return {
        "epsg": epsg,
        "resolution": res,
        "bounds": [left, top - height * res, left + width * res, top],
        "shape": [height, width],
        "tiles": list(tiles.values()),
    }


def exact_mask(grid: dict[str, Any]) -> Any:
    """Boolean (y, x): pixels every tool must produce identically (see ``compare_large``).

    The pixels whose winning tile (first in mosaic order covering the pixel centre) is
    an aligned tile of the target zone, or that no tile covers, minus the pixels within
    :data:`EDGE_PIXELS` of a resampled tile's footprint edge.
    """
    left, _, _, top = grid["bounds"]
    res = grid["resolution"]
    transform = Affine(res, 0.0, left, 0.0, -res, top)
    size = tuple(grid["shape"])
    owner = np.full(size, -1, np.int16)
    shapes = [_footprint(t, grid["epsg"]) for t in grid["tiles"]]
    for index in reversed(range(len(shapes))):  # the first tile wins: painted last
        inside = rasterize([shapes[index]], out_shape=size, transform=transform, fill=0,
                           default_value=1, dtype="uint8")  # fmt: skip
        owner[inside.astype(bool)] = index
    aligned = [i for i, t in enumerate(grid["tiles"]) if t["aligned"]]
    exact = np.isin(owner, aligned) | (owner == -1)
    edges = [s.boundary.buffer(EDGE_PIXELS * res) for s, t in zip(shapes, grid["tiles"],
             strict=True) if not t["aligned"]]  # fmt: skip
    if edges:
        near = rasterize(edges, out_shape=size, transform=transform, fill=0, default_value=1,
                         all_touched=True, dtype="uint8")  # fmt: skip
        exact &= ~near.astype(bool)
    return exact
