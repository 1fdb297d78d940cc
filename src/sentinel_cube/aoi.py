"""Areas of interest: read one from files, text, bounds or geometries; geocode a place.

Every AOI is returned as a shapely (Multi)Polygon in EPSG:4326 (lon, lat).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import LinearRing, LineString, MultiPolygon, Polygon, box, shape
from shapely.geometry.base import BaseGeometry

from .exceptions import AOIError, MissingExtraError, SentinelCubeError

__all__ = ["AOILike", "aoi_hull", "aoi_to_crs", "geocode", "read_aoi", "reproject_geometry"]

#: What :func:`read_aoi` accepts.
AOILike = Any

_VECTOR_SUFFIXES = {
    ".geojson", ".json", ".gpkg", ".shp", ".kml", ".fgb", ".gml", ".parquet", ".geoparquet",
    ".zip", ".wkt", ".txt",
}  # fmt: skip
#: Densifying reprojected outlines. An edge is straight in its source CRS and generally
#: curved in the target one (a parallel bows by ~1.8 km over 4 degrees in UTM), so the
#: vertices alone under-cover the area. Edges are first cut to at most this length in the
#: source CRS, short enough that the projected edge bends one way only (no inflection),
#: so that its largest deviation from a chord sits near the chord's midpoint ...
_MAX_SEGMENT = {"degree": 0.1, "other": 10_000.0}
#: ... then every piece whose projected midpoint lies farther than this from the middle of
#: its projected chord is halved, until all pass: the outline is then within about this
#: distance of the true curve (in target units: ~1 cm, or 1e-7 degree ~ 1 cm), whatever
#: the AOI's size. A fixed step alone would either miss that bound on large AOIs or
#: waste vertices on small ones.
_TOLERANCE = {"degree": 1e-7, "other": 0.01}
#: Halvings at most (2**20 pieces per initial segment): a backstop for degenerate CRSs.
_MAX_HALVINGS = 20

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


def aoi_to_crs(aoi: AOILike, crs: Any) -> BaseGeometry:
    """An AOI (anything :func:`read_aoi` takes) in ``crs``, its edges densified.

    The one way this package reprojects AOIs: planning (``open_cube(aoi=...)``) and
    :func:`sentinel_cube.clip` both use it, so they agree on the AOI's extent.

    Examples
    --------
    >>> utm = aoi_to_crs((19.0, 45.0, 23.0, 48.0), "EPSG:32634")
    >>> round(utm.bounds[1])  # the southern edge bows south of its corners
    4982950
    >>> len(utm.exterior.coords) > 5
    True
    """
    return reproject_geometry(read_aoi(aoi), 4326, crs)


def reproject_geometry(
    geometry: BaseGeometry, src_crs: Any, dst_crs: Any, tolerance: float | None = None
) -> BaseGeometry:
    """Reproject ``geometry`` from ``src_crs`` to ``dst_crs``, densifying its edges.

    Edges (straight lines in ``src_crs``) are cut until each projected piece lies
    within ~1 cm of the true projected curve; original vertices are kept. Points
    are transformed as they are.

    Parameters
    ----------
    geometry
        Any shapely geometry, in ``src_crs`` (x, y order: lon, lat for degrees).
    src_crs, dst_crs
        Anything :class:`pyproj.CRS` takes (``4326``, ``"EPSG:32634"``, WKT, a
        rasterio or pyproj CRS).
    tolerance
        Largest distance between the projected outline and the true curve, in
        ``dst_crs`` units; default ~1 cm (0.01 m, or 1e-7 degree). Coarser is
        cheaper: fewer vertices.

    Returns
    -------
    shapely geometry
        Of the same type; ``geometry`` itself when the two CRSs are equal.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> south = reproject_geometry(box(19, 45, 23, 48), 4326, 32634).bounds[1]
    >>> corner = reproject_geometry(shapely.Point(19, 45), 4326, 32634).y
    >>> round(corner - south)  # metres the edge's vertices alone would miss
    1946
    """
    src_key, dst_key = _crs_key(src_crs), _crs_key(dst_crs)
    if _same_crs(src_key, dst_key):
        return geometry
    transformer = _transformer(src_key, dst_key)
    segment = _MAX_SEGMENT[_unit(src_key)]
    if tolerance is None:
        tolerance = _TOLERANCE[_unit(dst_key)]
    elif not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance!r}")

    def ring(coords: np.ndarray) -> np.ndarray:
        return _densified(coords, transformer, segment, float(tolerance))

    return _map_lines(geometry, ring, transformer)


def _crs_key(crs: Any) -> str | int:
    """A hashable, cheap key of a CRS for the caches below."""
    if isinstance(crs, int | str):
        return crs
    to_epsg = getattr(crs, "to_epsg", None)
    epsg = to_epsg() if callable(to_epsg) else None
    return f"EPSG:{epsg}" if epsg else CRS.from_user_input(crs).to_wkt()


@lru_cache(maxsize=256)
def _transformer(src: str | int, dst: str | int) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


@lru_cache(maxsize=256)
def _same_crs(src: str | int, dst: str | int) -> bool:
    return src == dst or CRS.from_user_input(src) == CRS.from_user_input(dst)


@lru_cache(maxsize=256)
def _unit(crs: str | int) -> str:
    return "degree" if CRS.from_user_input(crs).is_geographic else "other"


def _densified(
    coords: np.ndarray, transformer: Transformer, max_segment: float, tolerance: float
) -> np.ndarray:
    """Projected vertices of a line (``(n, 2)`` source coords), edges halved adaptively."""
    src = np.asarray(shapely.get_coordinates(shapely.segmentize(LineString(coords), max_segment)))
    if len(src) < 2:
        return np.column_stack(transformer.transform(src[:, 0], src[:, 1]))
    dst = np.column_stack(transformer.transform(src[:, 0], src[:, 1]))
    active = np.ones(len(src) - 1, dtype=bool)  # segments still to check
    for _ in range(_MAX_HALVINGS):
        index = np.flatnonzero(active)
        if not index.size:
            break
        middle = (src[index] + src[index + 1]) / 2
        projected = np.column_stack(transformer.transform(middle[:, 0], middle[:, 1]))
        chord = (dst[index] + dst[index + 1]) / 2
        error = np.hypot(*(projected - chord).T)
        split = error > tolerance  # NaN (outside the projection's domain) is left alone
        if not split.any():
            break
        where = index[split] + 1
        src = np.insert(src, where, middle[split], axis=0)
        dst = np.insert(dst, where, projected[split], axis=0)
        # the two halves of a split segment are checked again, the others are final
        active = np.zeros(len(src) - 1, dtype=bool)
        positions = where + np.arange(len(where))  # indices of the inserted vertices
        active[positions - 1] = True
        active[positions] = True
    return dst


def _map_lines(geometry: BaseGeometry, ring: Any, transformer: Transformer) -> BaseGeometry:
    """Apply ``ring`` to every line of ``geometry``, rebuilding its type."""
    if geometry.is_empty:
        return geometry
    if isinstance(geometry, Polygon):
        return Polygon(
            ring(np.asarray(geometry.exterior.coords)),
            [ring(np.asarray(hole.coords)) for hole in geometry.interiors],
        )
    if isinstance(geometry, LinearRing):
        return LinearRing(ring(np.asarray(geometry.coords)))
    if isinstance(geometry, LineString):
        return LineString(ring(np.asarray(geometry.coords)))
    parts = getattr(geometry, "geoms", None)
    if parts is not None:
        return type(geometry)([_map_lines(g, ring, transformer) for g in parts])
    return shapely.transform(geometry, transformer.transform, interleaved=False)  # points


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
    geometry = frame.geometry if hasattr(frame, "geometry") else frame
    parts = [g for g in geometry.values if g is not None]
    if frame.crs.to_epsg() != 4326:  # densified, as every reprojected AOI
        parts = [reproject_geometry(g, frame.crs, 4326) for g in parts]
    return _finish(shapely.union_all(parts), what)


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
