"""Areas of interest: read one from files, text, bounds or geometries; geocode a place.

Every AOI is returned as a shapely (Multi)Polygon in EPSG:4326 (lon, lat).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.geometry.base import BaseGeometry

from .exceptions import AOIError, MissingExtraError, SentinelCubeError

__all__ = ["AOILike", "aoi_hull", "geocode", "read_aoi"]

#: What :func:`read_aoi` accepts.
AOILike = Any

_VECTOR_SUFFIXES = {
    ".geojson", ".json", ".gpkg", ".shp", ".kml", ".fgb", ".gml", ".parquet", ".geoparquet",
    ".zip", ".wkt", ".txt",
}  # fmt: skip
_EXPECTED = (
    "expected a polygon AOI: a GeoJSON or other vector file, WKT text, "
    "a (minx, miny, maxx, maxy) bbox in degrees, a shapely geometry or a GeoDataFrame"
)


def read_aoi(aoi: AOILike) -> Polygon | MultiPolygon:
    """Read an area of interest and return it as a polygon in EPSG:4326.

    Parameters
    ----------
    aoi
        One of: a path to a GeoJSON or any vector file GDAL reads (reprojected
        to EPSG:4326 when it has another CRS; all features are unioned); WKT or
        GeoJSON text; a ``(minx, miny, maxx, maxy)`` bounding box in degrees; a
        GeoJSON-like mapping; a shapely geometry (taken as lon/lat); a
        GeoDataFrame or GeoSeries (reprojected to EPSG:4326).

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        A valid, non-empty polygon in lon/lat.

    Raises
    ------
    AOIError
        If the input cannot be read, is empty or holds no polygon.

    Examples
    --------
    >>> read_aoi((19.0, 47.4, 19.2, 47.6)).bounds
    (19.0, 47.4, 19.2, 47.6)
    >>> read_aoi("POLYGON ((19 47, 20 47, 20 48, 19 47))").area
    0.5
    """
    if isinstance(aoi, Polygon | MultiPolygon):
        return _finish(aoi, "the AOI geometry")
    if isinstance(aoi, BaseGeometry):
        return _finish(aoi, "the AOI geometry")
    if _is_geopandas(aoi):
        return _from_geopandas(aoi, "the AOI GeoDataFrame")
    if isinstance(aoi, Mapping):
        return _from_geojson(aoi, "the AOI mapping")
    if isinstance(aoi, os.PathLike):
        return _from_file(Path(aoi))
    if isinstance(aoi, str):
        return _from_text(aoi)
    if isinstance(aoi, Sequence) and len(aoi) == 4:
        return _from_bbox(aoi)
    raise AOIError(f"cannot read an AOI from a {type(aoi).__name__}: {_EXPECTED}")


def aoi_hull(aoi: AOILike) -> Polygon:
    """Convex hull of an AOI, for catalogue queries that limit polygon vertices.

    Examples
    --------
    >>> aoi_hull((0, 0, 1, 1)).area
    1.0
    """
    hull = read_aoi(aoi).convex_hull
    assert isinstance(hull, Polygon)
    return hull


def geocode(place: str) -> Polygon | MultiPolygon:
    """Boundary polygon of a named place from OpenStreetMap (Nominatim) via osmnx.

    Needs the ``geocode`` extra (``pip install 'sentinel-cube[geocode]'``) and
    network access.

    Raises
    ------
    MissingExtraError
        When osmnx is not installed.
    SentinelCubeError
        When the geocoding service cannot be reached or knows no such place.
    """
    try:
        import osmnx
    except ImportError as error:
        raise MissingExtraError("geocode", "osmnx", f"geocode({place!r})") from error
    try:
        frame = osmnx.geocode_to_gdf(place)
    except (OSError, ConnectionError) as error:
        raise SentinelCubeError(
            f"geocode({place!r}): the OpenStreetMap geocoding service could not be reached "
            f"({error}); check the network or pass an AOI file to read_aoi instead"
        ) from error
    except Exception as error:  # osmnx raises its own error types for unknown places
        if _is_network_error(error):
            raise SentinelCubeError(
                f"geocode({place!r}): the OpenStreetMap geocoding service could not be "
                f"reached ({error}); check the network or pass an AOI file instead"
            ) from error
        raise SentinelCubeError(f"geocode({place!r}) found no boundary: {error}") from error
    return _from_geopandas(frame, f"the geocoded place {place!r}")


def _is_network_error(error: BaseException) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"ConnectionError", "Timeout", "RequestException", "URLError"})


def _is_geopandas(obj: object) -> bool:
    return type(obj).__name__ in {"GeoDataFrame", "GeoSeries"} and hasattr(obj, "crs")


def _from_geopandas(frame: Any, what: str) -> Polygon | MultiPolygon:
    if len(frame) == 0:
        raise AOIError(f"{what} is empty: {_EXPECTED}")
    if frame.crs is None:
        minx, miny, maxx, maxy = frame.total_bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise AOIError(f"{what} has no CRS and its coordinates are not lon/lat degrees")
        frame = frame.set_crs(4326)
    elif frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    geometry = frame.geometry if hasattr(frame, "geometry") else frame
    return _finish(shapely.union_all(geometry.values), what)


def _from_file(path: Path) -> Polygon | MultiPolygon:
    if not path.exists():
        raise AOIError(f"AOI file {str(path)!r} does not exist: {_EXPECTED}")
    if path.is_dir():
        raise AOIError(f"AOI path {str(path)!r} is a folder: {_EXPECTED}")
    if path.stat().st_size == 0:
        raise AOIError(f"AOI file {str(path)!r} is empty: {_EXPECTED}")
    if path.suffix.lower() in {".wkt", ".txt"}:
        return _from_text(path.read_text(), what=f"AOI file {str(path)!r}")
    import geopandas

    try:
        frame = geopandas.read_file(path)
    except Exception as error:  # pyogrio raises DataSourceError and friends
        raise AOIError(f"AOI file {str(path)!r} is not a readable vector file ({error})") from error
    return _from_geopandas(frame, f"AOI file {str(path)!r}")


def _from_text(text: str, what: str | None = None) -> Polygon | MultiPolygon:
    stripped = text.strip()
    if not stripped:
        raise AOIError(f"{what or 'the AOI text'} is empty: {_EXPECTED}")
    if stripped.startswith("{"):
        try:
            mapping = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise AOIError(f"{what or 'the AOI text'} is not valid GeoJSON ({error})") from error
        return _from_geojson(mapping, what or "the AOI GeoJSON text")
    head = stripped.split("(", 1)[0].strip().upper()
    if head in {"POLYGON", "MULTIPOLYGON", "GEOMETRYCOLLECTION", "POINT", "LINESTRING",
                "MULTIPOINT", "MULTILINESTRING"} or head.startswith("SRID"):  # fmt: skip
        try:
            geometry = shapely.from_wkt(stripped.split(";", 1)[-1])
        except shapely.errors.GEOSException as error:
            raise AOIError(f"{what or 'the AOI text'} is not valid WKT ({error})") from error
        return _finish(geometry, what or "the AOI WKT")
    path = Path(stripped)
    if what is None and (path.suffix.lower() in _VECTOR_SUFFIXES or path.exists()):
        return _from_file(path)
    raise AOIError(f"{what or repr(text)}: {_EXPECTED}")


def _from_geojson(mapping: Mapping[str, Any], what: str) -> Polygon | MultiPolygon:
    kind = mapping.get("type")
    try:
        if kind == "FeatureCollection":
            features = mapping.get("features") or []
            if not features:
                raise AOIError(f"{what} has no features: {_EXPECTED}")
            geometry = shapely.union_all([shape(f["geometry"]) for f in features])
        elif kind == "Feature":
            geometry = shape(mapping["geometry"])
        else:
            geometry = shape(mapping)
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as e:
        raise AOIError(f"{what} is not valid GeoJSON ({e}): {_EXPECTED}") from e
    return _finish(geometry, what)


def _from_bbox(bbox: Sequence[Any]) -> Polygon:
    try:
        minx, miny, maxx, maxy = (float(v) for v in bbox)
    except (TypeError, ValueError) as error:
        raise AOIError(f"AOI bbox {tuple(bbox)!r} must hold four numbers") from error
    if not (minx < maxx and miny < maxy):
        raise AOIError(f"AOI bbox {tuple(bbox)!r} must be (minx, miny, maxx, maxy) with min < max")
    if not (-180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90):
        raise AOIError(f"AOI bbox {tuple(bbox)!r} must be in degrees (lon -180..180, lat -90..90)")
    return box(minx, miny, maxx, maxy)


def _finish(geometry: BaseGeometry, what: str) -> Polygon | MultiPolygon:
    if geometry is None or geometry.is_empty:
        raise AOIError(f"{what} is empty: {_EXPECTED}")
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
    polygons = _polygons(geometry)
    if not polygons:
        raise AOIError(f"{what} is a {geometry.geom_type}, not a polygon: {_EXPECTED}")
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise AOIError(
            f"{what} has coordinates outside lon/lat degrees ({geometry.bounds}); "
            "pass a file or GeoDataFrame with its CRS so it can be reprojected"
        )
    result = polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
    return result


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    parts = getattr(geometry, "geoms", ())
    return [p for g in parts for p in _polygons(g)]
