"""How much of an AOI each product covers, measured in an equal-area projection.

Areas in degrees shrink towards the poles (a degree of longitude is 111 km at
the equator, 38 km at 70 deg N), so overlap fractions computed on lon/lat
polygons are wrong away from the equator. :func:`coverage` projects the AOI and
the footprints to a Lambert azimuthal equal-area projection centred on the AOI
(areas preserved everywhere, no zone boundaries, fine across the antimeridian) after
densifying their edges, and divides there.
"""

from __future__ import annotations

import geopandas as gpd
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from ..aoi import AOILike, read_aoi, reproject_geometry

__all__ = ["coverage", "equal_area_crs"]


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
