"""Read the metadata of a Sentinel-2 ``.SAFE`` product, folder or zip, into a :class:`Product`.

Only XML is read: the product metadata (``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``) and
the tile geocoding at the top of ``GRANULE/*/MTD_TL.xml``; band files are checked in
the folder or zip listing, not opened. A product without ``MTD_TL.xml`` is the one
exception: the header of one band file per resolution gives the band grids (the
tile id alone does not fix the grid to better than tens of metres). Zips are read in
place (the XML through :mod:`zipfile`, the rasters later through GDAL's
``/vsizip/``), never extracted.

The bytes come from a :class:`~sentinel_cube.safe._container.ProductContainer`
(folder or zip); this module turns what they hold into a :class:`Product`.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

import antimeridian
from affine import Affine
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from .. import _cloud, mgrs
from ..bands import NATIVE_RESOLUTION, SPECTRAL_BANDS, normalize_band
from ._container import MTD_RE, REDOWNLOAD, ZIP_ERRORS, ProductContainer, open_container
from ._georef import FileGrid, GeoreferenceError, read_file_grid
from ._model import BandFile, Product
from ._names import parse_band_file, parse_product_name, tile_from_name
from ._product_mtd import ProductMetadata, parse_product_metadata
from ._remote import open_remote_container
from ._tile_mtd import TileMetadata, parse_tile_metadata
from ._xml import MetadataError

__all__ = ["read_product"]

#: Bands a product offers, in the order of :attr:`Product.bands`.
_BAND_ORDER: tuple[str, ...] = SPECTRAL_BANDS + ("SCL",)
#: Image files listed by the metadata that are not read as bands.
_IGNORED_FILES = frozenset({"TCI", "AOT", "WVP"})

# --------------------------------------------------------------------------- helpers


def _normalize_required(require_bands: str | Iterable[str] | None) -> str | tuple[str, ...] | None:
    if require_bands is None:
        return None
    if isinstance(require_bands, str):
        if require_bands.strip().lower() == "all":
            return "all"
        require_bands = [require_bands]
    try:
        names = list(require_bands)
    except TypeError:
        raise TypeError(
            f"require_bands must be 'all', None or a list of band names, not {require_bands!r}"
        ) from None
    return tuple(dict.fromkeys(normalize_band(name) for name in names))


def _member(entry: str, source: ProductContainer, mtd: str) -> str:
    """A product-relative member path from an ``IMAGE_FILE`` entry, refusing escapes."""
    text = entry.strip().replace("\\", "/")
    normal = posixpath.normpath(text)
    if text.startswith("/") or normal == ".." or normal.startswith("../") or ":" in normal:
        raise source.error(
            f"{mtd} lists the image file {entry!r}, which points outside the product; "
            f"the metadata is corrupt or forged - {REDOWNLOAD}"
        )
    return normal


def _band_entries(meta: ProductMetadata, source: ProductContainer, mtd: str) -> dict[str, str]:
    """Band -> image file (relative, no extension) at its native resolution."""
    entries: dict[str, str] = {}
    for entry in meta.image_files:
        parsed = parse_band_file(entry)
        if parsed is None or parsed.band in _IGNORED_FILES:
            continue
        native = NATIVE_RESOLUTION.get(parsed.band)
        if native is None or (parsed.resolution is not None and parsed.resolution != native):
            continue
        if parsed.band == "SCL" and meta.processing_level != "L2A":
            continue
        entries.setdefault(parsed.band, _member(entry, source, mtd))
    return {band: entries[band] for band in _BAND_ORDER if band in entries}


def _extensions(image_format: str | None) -> tuple[str, ...]:
    if image_format and "TIF" in image_format.upper():
        return (".tif", ".tiff", ".TIF", ".jp2", "")
    return (".jp2", ".tif", ".tiff", ".TIF", ".JP2", "")


def _locate(source: ProductContainer, stem: str, extensions: tuple[str, ...]) -> str | None:
    for ext in extensions:
        if source.exists(stem + ext):
            return stem + ext
    # Some archives move the granule's files (flattened folders): look by file name.
    basename = posixpath.basename(stem)
    for ext in extensions:
        if ext:
            found = source.find_basename(basename + ext)
            if found:
                return found
    return None


def _granule_of(member: str) -> str | None:
    parts = member.split("/")
    if len(parts) > 2 and parts[0] == "GRANULE":
        return parts[1]
    return None


def _choose_tile_mtd(candidates: list[str], band_members: Iterable[str]) -> str | None:
    if not candidates:
        return None
    granules = {g for g in map(_granule_of, band_members) if g}
    for candidate in candidates:
        if _granule_of(candidate) in granules:
            return candidate
    return candidates[0]


def _tile_id(
    meta: ProductMetadata,
    source: ProductContainer,
    members: Iterable[str],
    tile: TileMetadata | None,
) -> str:
    named = parse_product_name(meta.product_uri or "") or parse_product_name(source.root_name)
    if named:
        return named.tile_id
    for text in (*members, tile.tile_id if tile else None, source.root_name):
        found = tile_from_name(text) if text else None
        if found:
            return found
    raise source.error(
        "the MGRS tile cannot be found in the product name, the granule folders or the "
        "tile metadata; the product is not a standard Sentinel-2 product"
    )


def _product_id(meta: ProductMetadata, source: ProductContainer) -> str:
    name = (meta.product_uri or "").replace("\\", "/").rsplit("/", 1)[-1]
    if not name:
        name = source.root_name
    for suffix in (".zip", ".SAFE"):
        if name.upper().endswith(suffix.upper()):
            name = name[: -len(suffix)]
    return name


def _footprint(
    points: tuple[tuple[float, float], ...], source: ProductContainer, mtd: str
) -> BaseGeometry:
    lons = [lon for lon, _ in points]
    crosses = any(abs(b - a) > 180.0 for a, b in zip(lons, lons[1:] + lons[:1], strict=True))
    try:
        polygon = Polygon(points)
        if crosses or min(lons) < -180.0 or max(lons) > 180.0:
            fixed = antimeridian.fix_polygon(polygon, fix_winding=True)
        else:  # the common case; fix_polygon costs ~1 ms, skip it when nothing crosses
            fixed = orient(polygon)
        if not fixed.is_valid:
            fixed = fixed.buffer(0)
    except Exception as exc:  # antimeridian/shapely raise assorted errors on odd rings
        raise source.error(
            f"the footprint (<EXT_POS_LIST>) of {mtd} is not a usable polygon ({exc}); "
            f"the metadata is corrupt - {REDOWNLOAD}"
        ) from exc
    if fixed.is_empty:
        raise source.error(f"the footprint (<EXT_POS_LIST>) of {mtd} is empty - {REDOWNLOAD}")
    return fixed


def _file_grid(
    source: ProductContainer, member: str, epsg: int, grids: dict[int, FileGrid], resolution: int
) -> tuple[tuple[int, int], Affine]:
    """The grid of ``member`` from its own georeferencing, read once per resolution."""
    found = grids.get(resolution)
    if found is None:
        problem = None
        try:
            found = read_file_grid(source.gdal_path(member))
        except GeoreferenceError as exc:
            problem = str(exc)
        if found is not None and found.epsg != epsg:
            problem = (
                f"is georeferenced in {found.crs or 'an unknown CRS'}, but its tile is in "
                f"EPSG:{epsg}"
            )
        if problem is not None or found is None:
            raise source.error(
                f"has no GRANULE/*/MTD_TL.xml, so the band grids must come from the band "
                f"files, but {member} {problem}; the product is incomplete or corrupt - "
                f"{REDOWNLOAD} (with its MTD_TL.xml), or pass require_bands=None and remove "
                "the damaged band files to read the other metadata"
            )
        grids[resolution] = found
    return found.shape, found.transform


def _grid(
    resolution: int, tile: TileMetadata, source: ProductContainer, tile_mtd: str | None
) -> tuple[tuple[int, int], Affine]:
    size, position = tile.sizes.get(resolution), tile.geopositions.get(resolution)
    if size is None or position is None:
        element = "Size" if size is None else "Geoposition"
        raise source.error(
            f'{tile_mtd} lacks the required element <{element} resolution="{resolution}">; '
            f"the tile metadata is incomplete - {REDOWNLOAD}"
        )
    ulx, uly, xdim, ydim = position
    return size, Affine(xdim, 0.0, ulx, 0.0, ydim, uly)


# --------------------------------------------------------------------------- public


def read_product(
    path: str | os.PathLike[str],
    require_bands: str | Iterable[str] | None = "all",
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> Product:
    """Read the metadata of a Sentinel-2 L1C or L2A product.

    Parameters
    ----------
    path : str or path-like
        A ``.SAFE`` folder (the suffix may be missing), a ``.zip`` holding
        ``NAME.SAFE/...`` as the hubs deliver it (read in place, never extracted),
        or a folder that holds just the product ``MTD_MSIL*.xml``.
    require_bands : "all", None or list of str, default "all"
        Which band files must be present. ``"all"``: every band the metadata lists
        (B01..B12 at native resolution, and SCL for L2A); ``None``: none (read the
        metadata of incomplete or metadata-only products); a list such as
        ``["B04", "B08", "SCL"]``: those. Absent files never raise beyond this and
        are reported in :attr:`Product.missing_bands`.
    storage_options : dict, optional
        For ``s3://`` products: ``key``, ``secret``, ``token``, ``profile``,
        ``endpoint_url``, ``region_name``, ``anon``, overriding the environment
        (``AWS_*`` variables and profiles, ``AWS_ENDPOINT_URL``, GDAL's
        ``AWS_S3_ENDPOINT``, ``CDSE_S3_*``; see :mod:`sentinel_cube._cloud`).

    Returns
    -------
    Product
        With band paths GDAL opens: absolute file paths for folders,
        ``/vsizip/{zip}/{member}`` for zips; for products on object storage or
        HTTP (``s3://bucket/prefix/NAME.SAFE`` or ``.zip``, ``https://.../NAME.zip``,
        read in place) ``/vsis3/``, ``/vsicurl/`` or ``/vsizip//vsis3/...`` paths,
        and :attr:`Product.path` is the URL without any secret. A remote ``.SAFE``
        folder is not listed: a band file missing from it is reported when read.
        Band grids come from ``MTD_TL.xml``; without it, from the header of one
        band file per resolution.

    Raises
    ------
    ProductError
        The path does not exist, is not a SAFE product, has a name that is not
        UTF-8, is a truncated, corrupt or hostile zip (members escaping the archive,
        zip bombs), holds malformed or hostile XML or out-of-range values, lacks a
        required metadata element or band file, or lacks ``MTD_TL.xml`` and has band
        files without georeferencing. The message names the product and what to do.
    ValueError
        ``require_bands`` names an unknown band.

    Examples
    --------
    >>> p = read_product("S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_20230810T124346.zip")
    ... # doctest: +SKIP
    >>> p.tile_id, p.processing_baseline, p.band("B04").offset  # doctest: +SKIP
    ('34TCT', '05.09', -1000.0)
    >>> p.band("B04").path  # doctest: +SKIP
    '/vsizip//data/S2B_..._20230810T124346.zip/S2B_..._20230810T124346.SAFE/GRANULE/.../B04_10m.jp2'
    """
    required = _normalize_required(require_bands)
    text = os.fspath(path)
    source: ProductContainer
    if _cloud.is_remote(text):
        source = open_remote_container(text, _cloud.settings(storage_options, url=text))
    else:
        source = open_container(os.path.abspath(os.path.expanduser(text)))
    try:
        return _read(source, required)
    finally:
        source.close()


def _read(source: ProductContainer, required: str | tuple[str, ...] | None) -> Product:
    mtd = source.find_product_mtd()
    level_match = MTD_RE.match(posixpath.basename(mtd))
    try:
        meta = parse_product_metadata(
            source.read(mtd), mtd, level_hint="L" + level_match.group(1) if level_match else None
        )
    except MetadataError as exc:
        raise source.error(str(exc)) from exc.__cause__ or exc

    entries = _band_entries(meta, source, mtd)
    tile_mtd = _choose_tile_mtd(source.find_tile_mtds(), entries.values())
    tile: TileMetadata | None = None
    if tile_mtd is not None:
        try:
            with source.open(tile_mtd) as stream:
                tile = parse_tile_metadata(stream, tile_mtd)
        except MetadataError as exc:
            raise source.error(str(exc)) from exc.__cause__ or exc
        except ZIP_ERRORS as exc:  # decompression errors while streaming a zip member
            raise source.error(
                f"cannot read {tile_mtd} ({type(exc).__name__}: {exc}); the product is "
                f"corrupt - {REDOWNLOAD}"
            ) from exc

    tile_id = _tile_id(meta, source, entries.values(), tile)
    try:
        epsg = mgrs.tile_epsg(tile_id)
    except ValueError as exc:
        raise source.error(f"its tile {tile_id!r} is not a valid MGRS tile") from exc
    if tile is not None and tile.epsg is not None and tile.epsg != epsg:
        raise source.error(
            f"{tile_mtd} gives the CRS EPSG:{tile.epsg}, but tile {tile_id} lies in the UTM "
            f"zone of EPSG:{epsg}; the tile metadata is corrupt - {REDOWNLOAD}"
        )

    extensions = _extensions(meta.image_format)
    bands: dict[str, BandFile] = {}
    missing: dict[str, str] = {}
    file_grids: dict[int, FileGrid] = {}
    for band, stem in entries.items():
        member = _locate(source, stem, extensions)
        if member is None:
            missing[band] = stem
            continue
        resolution = NATIVE_RESOLUTION[band]
        if tile is None:  # no tile metadata: the band files' own georeferencing
            shape, transform = _file_grid(source, member, epsg, file_grids, resolution)
        else:
            shape, transform = _grid(resolution, tile, source, tile_mtd)
        if band == "SCL":
            offset, quantification = 0.0, 1.0
        else:
            offset, quantification = meta.offsets.get(band, 0.0), meta.quantification
        bands[band] = BandFile(
            band=band,
            path=source.gdal_path(member),
            resolution=resolution,
            shape=shape,
            transform=transform,
            offset=offset,
            quantification=quantification,
            nodata=meta.nodata,
            saturated=meta.saturated,
        )

    if required is not None:
        if not entries:
            raise source.error(
                f"{mtd} lists no band image files (<IMAGE_FILE>); the metadata is incomplete - "
                f"{REDOWNLOAD}, or pass require_bands=None to read the other metadata"
            )
        wanted = tuple(entries) if required == "all" else required
        unlisted = [b for b in wanted if b not in entries]
        if unlisted:
            have = ", ".join(entries) or "none"
            raise source.error(
                f"the {meta.processing_level} metadata ({mtd}) lists no band "
                f"{', '.join(unlisted)} (bands listed: {have}); require only bands the "
                "product has"
            )
        absent = [b for b in wanted if b in missing]
        if absent:
            files = "; ".join(f"{b} ({missing[b]}{extensions[0]})" for b in absent)
            raise source.error(
                f"{len(absent)} required band file(s) missing: {files}. The download is "
                f"incomplete - {REDOWNLOAD}, or pass require_bands=None (or the list of "
                "bands you need) to read what is there"
            )

    pct = dict(meta.percentages)
    image_content = {
        key: pct.pop(f"{key}_percentage", pct.pop(f"l2a_{key}_percentage", None))
        for key in ("vegetation", "not_vegetated", "water", "snow_ice")
    }
    return Product(
        path=source.path,
        product_id=_product_id(meta, source),
        platform=meta.platform,
        processing_level=meta.processing_level,
        producttype=meta.product_type,
        processing_baseline=meta.processing_baseline,
        sensing_start=meta.sensing_start,
        generation_time=meta.generation_time,
        tile_id=tile_id,
        relative_orbit=meta.relative_orbit,
        orbit_direction=meta.orbit_direction,
        epsg=epsg,
        footprint=_footprint(meta.footprint, source, mtd),
        bands=bands,
        missing_bands=tuple(missing),
        cloud_cover=meta.cloud_cover,
        vegetation=image_content["vegetation"],
        not_vegetated=image_content["not_vegetated"],
        water=image_content["water"],
        snow_ice=image_content["snow_ice"],
        quality=pct,
    )
