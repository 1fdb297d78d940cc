"""Product footprints over an area of interest, on an interactive lon/lat map."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from ..aoi import AOILike, read_aoi
from ..catalog import coverage
from ..exceptions import SentinelCubeError
from ._common import check_size, column_label, holoviews, style

__all__ = ["footprints"]

_TO_MERCATOR = Transformer.from_crs(4326, 3857, always_xy=True)


def footprints(
    products: pd.DataFrame,
    aoi: AOILike | None = None,
    color: str = "cloudcoverpercentage",
    *,
    cmap: str | None = None,
    tiles: str | None = None,
    width: int = 650,
    title: str | None = None,
) -> Any:
    """Footprints of the products over the AOI, coloured by a column, with hover.

    Parameters
    ----------
    products : GeoDataFrame
        A products table (footprints in any CRS, drawn in lon/lat).
    aoi
        Optional area of interest (anything :func:`sentinel_cube.read_aoi` takes): drawn as
        a red outline; when the table has no ``aoi_fraction`` column it is computed with
        :func:`sentinel_cube.coverage`.
    color : str
        Column colouring the footprints: numeric (continuous colour bar) or not (one colour
        per value, with a legend: text, and integers with at most 10 values), e.g.
        ``"tileid"`` or ``"relativeorbitnumber"``.
    cmap : str, optional
        Colour map name; default ``"viridis"`` (numeric) or ``"Category10"``.
    tiles : str, optional
        A basemap tile layer from holoviews' tile sources (``"OSM"``, ``"CartoLight"``,
        ``"EsriImagery"`` ...); coordinates are then Web Mercator metres. Tiles are
        fetched from the network by the browser when the view is shown, so the default is
        None: a plain lon/lat axis that needs nothing online.
    width : int
        Width of the map area in pixels; the height follows from the lon/lat aspect.
    title : str, optional
        Plot title; default ``"N products"``.

    Returns
    -------
    holoviews.Overlay
        Polygons (one per product, hover: product id, UTC sensing date, cloud cover, AOI
        fraction, the colour column) and the AOI outline; display it in a notebook or
        write it with :func:`sentinel_cube.plot.save`.

    Examples
    --------
    >>> view = footprints(products, "budapest.geojson", color="tileid")   # doctest: +SKIP
    >>> sc.plot.save(view, "footprints.html")                            # doctest: +SKIP
    """
    hv = holoviews()
    check_size("width", width)
    if not hasattr(products, "geometry") or not isinstance(products, pd.DataFrame):
        raise SentinelCubeError("products must be a products GeoDataFrame with footprints")
    if len(products) == 0:
        raise SentinelCubeError("products is empty: there is no footprint to draw")
    if tiles is not None and tiles not in hv.element.tiles.tile_sources:
        raise SentinelCubeError(
            f"tiles={tiles!r} is not a tile source; use one of "
            f"{', '.join(hv.element.tiles.tile_sources)} or None"
        )
    shape = read_aoi(aoi) if aoi is not None else None
    if shape is not None and "aoi_fraction" not in products.columns:
        products = coverage(products, shape)
    if color not in products.columns:
        raise SentinelCubeError(
            f"color={color!r}: the products table has no such column; use e.g. "
            "'cloudcoverpercentage', 'aoi_fraction' (with an AOI), 'tileid' or "
            "'relativeorbitnumber'"
        )
    geometries = products.geometry
    if geometries.crs is not None and geometries.crs.to_epsg() != 4326:
        geometries = geometries.to_crs(4326)

    project = tiles is not None
    numeric = _continuous(products[color])
    records = []
    for (product_id, row), geometry in zip(products.iterrows(), geometries, strict=True):
        if geometry is None or geometry.is_empty:
            continue
        record: dict[str, Any] = _outline(geometry, project)
        record["product"] = str(product_id)
        record["date"] = _date(row.get("beginposition"))
        for column in ("cloudcoverpercentage", "aoi_fraction", color):
            if column in products.columns:
                value = row[column]
                if numeric or column != color:
                    value = float(value) if pd.notna(value) else np.nan
                else:
                    value = "unknown" if pd.isna(value) else str(value)
                record[column] = value
        records.append(record)
    if not records:
        raise SentinelCubeError("no product of the table has a footprint to draw")
    vdims = ["product", "date"]
    vdims += [c for c in ("cloudcoverpercentage", "aoi_fraction") if c in products.columns]
    if color not in vdims:
        vdims.append(color)
    dims = [hv.Dimension(v, label=column_label(v)) for v in vdims]
    tooltips = [("product", "@product"), ("sensing (UTC)", "@date")]
    if "cloudcoverpercentage" in vdims:
        tooltips.append(("cloud cover", "@cloudcoverpercentage{0.0} %"))
    if "aoi_fraction" in vdims:
        tooltips.append(("AOI fraction", "@aoi_fraction{0.000}"))
    if color not in ("cloudcoverpercentage", "aoi_fraction"):
        tooltips.append((column_label(color), f"@{{{color}}}"))
    xlabel, ylabel = (
        ("x (Web Mercator, m)", "y (Web Mercator, m)")
        if project
        else ("longitude (°E)", "latitude (°N)")
    )
    polygons = hv.Polygons(
        records,
        kdims=[hv.Dimension("x", label=xlabel), hv.Dimension("y", label=ylabel)],
        vdims=dims,
    )
    polygons = style(
        polygons,
        both={
            "color": color,
            "cmap": cmap or ("viridis" if numeric else "Category10"),
            "colorbar": numeric,
            "show_legend": not numeric,
        },
        bokeh={
            "fill_alpha": 0.35,
            "line_color": "#333333",
            "line_alpha": 0.8,
            "line_width": 1,
            "tools": ["hover"],
            "hover_tooltips": tooltips,
        },
        matplotlib={"alpha": 0.35, "edgecolor": "#333333", "linewidth": 1},
    )
    if numeric and color.endswith("percentage"):
        polygons = style(polygons, both={"clim": (0, 100)})
    layers = [polygons]
    if shape is not None:
        outline = _outline(shape, project)
        path = hv.Path([{"x": outline["x"], "y": outline["y"]}], kdims=polygons.kdims, label="AOI")
        layers.append(
            style(
                path,
                both={"color": "red"},
                bokeh={"line_width": 2.5},
                matplotlib={"linewidth": 2.5},
            )
        )
    overlay = hv.Overlay(layers)
    if project:
        overlay = hv.element.tiles.tile_sources[tiles]() * overlay
    bounds = _bounds(geometries, shape)
    pad_x, pad_y = 0.05 * (bounds[2] - bounds[0]), 0.05 * (bounds[3] - bounds[1])
    lower = _project(bounds[0] - pad_x, bounds[1] - pad_y, project)
    upper = _project(bounds[2] + pad_x, bounds[3] + pad_y, project)
    aspect = 1.0 if project else 1 / math.cos(math.radians((bounds[1] + bounds[3]) / 2))
    box_ratio = (upper[0] - lower[0]) / ((upper[1] - lower[1]) * aspect)
    return style(
        overlay,
        both={
            "title": title or f"{len(records)} products",
            "xlim": (lower[0], upper[0]),
            "ylim": (lower[1], upper[1]),
            "legend_position": "right",
        },
        bokeh={"frame_width": width, "data_aspect": aspect},
        matplotlib={"aspect": box_ratio, "fig_size": 180},
    )


def _continuous(values: pd.Series) -> bool:
    """Colour a column with a colour bar (floats, many integers) or by category."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    return pd.api.types.is_float_dtype(values) or values.nunique() > 10


def _date(value: Any) -> str:
    if value is None or pd.isna(value):
        return "-"
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M")


def _parts(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)]


def _outline(geometry: BaseGeometry, project: bool) -> dict[str, Any]:
    """holoviews polygon data: parts separated by NaN, holes per part."""
    xs: list[float] = []
    ys: list[float] = []
    holes = []
    for i, part in enumerate(_parts(geometry)):
        if i:
            xs.append(np.nan)
            ys.append(np.nan)
        x, y = np.asarray(part.exterior.coords).T[:2]
        x, y = _project(x, y, project)
        xs.extend(x)
        ys.extend(y)
        part_holes = []
        for ring in part.interiors:
            rx, ry = np.asarray(ring.coords).T[:2]
            hx, hy = _project(rx, ry, project)
            part_holes.append(np.column_stack([hx, hy]))
        holes.append(part_holes)
    record: dict[str, Any] = {"x": np.asarray(xs), "y": np.asarray(ys)}
    if any(holes):
        record["holes"] = holes
    return record


def _project(x: Any, y: Any, project: bool) -> tuple[Any, Any]:
    return _TO_MERCATOR.transform(x, y) if project else (x, y)


def _bounds(geometries: Any, shape: BaseGeometry | None) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = geometries.total_bounds
    if shape is not None:
        a, b, c, d = shape.bounds
        minx, miny, maxx, maxy = min(minx, a), min(miny, b), max(maxx, c), max(maxy, d)
    return float(minx), float(miny), float(maxx), float(maxy)
