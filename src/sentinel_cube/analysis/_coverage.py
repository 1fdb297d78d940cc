"""How much of an AOI each product covers, and how often each tile / orbit covers it.

Areas in degrees shrink towards the poles (a degree of longitude is 111 km at
the equator, 38 km at 70 deg N), so overlap fractions computed on lon/lat
polygons are wrong away from the equator. :func:`coverage` projects the AOI and
the footprints to a Lambert azimuthal equal-area projection centred on the AOI
(areas preserved everywhere, no zone boundaries, fine across the antimeridian) after
densifying their edges, and divides there. :func:`coverage_summary` groups those
fractions by tile and relative orbit.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import pandas as pd
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from ..aoi import AOILike, read_aoi, reproject_geometry
from ..exceptions import SentinelCubeError
from ._common import check_columns, resolve_group, sensing_times

__all__ = ["coverage", "coverage_summary", "equal_area_crs"]


def equal_area_crs(geometry: BaseGeometry) -> CRS:
    """A Lambert azimuthal equal-area CRS centred on ``geometry`` (lon/lat).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> equal_area_crs(box(19.0, 47.4, 19.2, 47.6)).coordinate_operation.method_name
    'Lambert Azimuthal Equal Area'
    """
    parts = getattr(geometry, "geoms", [geometry])
    centre = max(parts, key=lambda g: g.area).representative_point()
    return CRS.from_proj4(
        f"+proj=laea +lat_0={centre.y:.6f} +lon_0={centre.x:.6f} +datum=WGS84 +units=m +no_defs"
    )


def coverage(products: gpd.GeoDataFrame, aoi: AOILike) -> gpd.GeoDataFrame:
    """Add ``aoi_fraction``: the share of the AOI's area inside each product's footprint.

    Parameters
    ----------
    products : GeoDataFrame
        A products table (footprints in any CRS; EPSG:4326 in this package).
    aoi
        Anything :func:`sentinel_cube.read_aoi` takes.

    Returns
    -------
    GeoDataFrame
        A copy with ``aoi_fraction`` in [0, 1] (0 for a missing footprint),
        computed in :func:`equal_area_crs` of the AOI.

    Examples
    --------
    >>> import sentinel_cube as sc                                        # doctest: +SKIP
    >>> products = sc.coverage(cat.search(aoi), aoi)                      # doctest: +SKIP
    >>> full = products[products.aoi_fraction >= 0.999]                   # doctest: +SKIP
    """
    shape = read_aoi(aoi)
    crs = equal_area_crs(shape)
    area = reproject_geometry(shape, 4326, crs)  # densified, as everywhere (see aoi)
    footprints = products.geometry
    if footprints.crs is None:
        footprints = footprints.set_crs(4326)
    source = footprints.crs
    dense = gpd.GeoSeries(
        [reproject_geometry(g, source, crs) if g is not None and not g.is_empty else None
         for g in footprints],
        index=products.index, crs=crs,
    )  # fmt: skip
    inside = dense.intersection(area).area.fillna(0.0)
    result = products.copy()
    result["aoi_fraction"] = (inside / area.area).clip(0.0, 1.0).astype("float64")
    return result


#: Units of the columns of :func:`coverage_summary`.
COVERAGE_UNITS = {
    "products": "products",
    "days": "distinct sensing days (UTC)",
    "share_of_days": "fraction of all sensing days of the table",
    "full_coverage": "products covering at least `full` of the AOI",
    "aoi_fraction_mean": "fraction of the AOI area inside the footprint (0-1)",
    "aoi_fraction_min": "fraction of the AOI area inside the footprint (0-1)",
    "aoi_fraction_max": "fraction of the AOI area inside the footprint (0-1)",
}


def coverage_summary(
    products: pd.DataFrame,
    aoi: AOILike | None = None,
    by: str | Sequence[str] = ("tileid", "relativeorbitnumber"),
    full: float = 0.999,
) -> pd.DataFrame:
    """For each tile / relative orbit: how often and how fully it covers the AOI.

    Parameters
    ----------
    products : GeoDataFrame
        A products table with footprints.
    aoi
        Anything :func:`sentinel_cube.read_aoi` takes. None: use the table's own
        ``aoi_fraction`` column (from :func:`sentinel_cube.coverage`).
    by : str or sequence of str
        Grouping columns; aliases ``"tile"``, ``"orbit"``, ``"platform"`` work.
    full : float
        The AOI fraction from which a product counts as covering the whole AOI.

    Returns
    -------
    DataFrame
        One row per group (index named by the ``by`` columns), sorted by index:

        - ``products``, ``days``: products and distinct UTC sensing days of the group;
        - ``share_of_days``: ``days`` divided by the sensing days of the whole table
          (how often the group delivers a product), 0-1;
        - ``full_coverage``: products with ``aoi_fraction >= full``;
        - ``aoi_fraction_mean``, ``_min``, ``_max``: how fully it covers the AOI (0-1,
          the share of the AOI's area inside the footprint, measured in an equal-area
          projection).

        ``attrs["units"]`` describes each column.

    Examples
    --------
    >>> summary = coverage_summary(products, "budapest.geojson")        # doctest: +SKIP
    >>> summary.loc[("34TCT", 79), "aoi_fraction_mean"]                # doctest: +SKIP
    1.0
    """
    if not 0 < full <= 1:
        raise SentinelCubeError(f"full={full!r} must be in (0, 1], e.g. 0.999")
    if aoi is not None:
        check_columns(products, ["geometry"], "products")
        frame = coverage(products, aoi)
    elif "aoi_fraction" in products.columns:
        frame = products
    else:
        raise SentinelCubeError(
            "aoi is None and the products table has no 'aoi_fraction' column: pass aoi= "
            "(a file, bbox or geometry) or add the column with sentinel_cube.coverage"
        )
    names = [by] if isinstance(by, str) else list(by)
    if not names:
        raise SentinelCubeError("by is empty: name at least one column, e.g. 'tileid'")
    keys = [resolve_group(frame, name) for name in names]
    days = sensing_times(frame).dt.floor("D")
    fractions = frame["aoi_fraction"].astype("float64").to_numpy()
    table = pd.DataFrame({"day": days.to_numpy(), "fraction": fractions})
    for key in keys:
        values = frame[key]
        if values.isna().any():
            values = values.astype(object).where(values.notna(), "unknown")
        table[key] = values.to_numpy()
    total_days = table["day"].nunique()
    grouped = table.groupby(keys, sort=True)
    result = pd.DataFrame(
        {
            "products": grouped.size(),
            "days": grouped["day"].nunique(),
            "full_coverage": grouped["fraction"].agg(lambda f: int((f >= full).sum())),
            "aoi_fraction_mean": grouped["fraction"].mean(),
            "aoi_fraction_min": grouped["fraction"].min(),
            "aoi_fraction_max": grouped["fraction"].max(),
        }
    )
    result.insert(2, "share_of_days", result["days"] / total_days if total_days else 0.0)
    for column in ("products", "days", "full_coverage"):
        result[column] = result[column].astype("int64")
    result.attrs = {"full": full, "units": dict(COVERAGE_UNITS)}
    return result
