"""Read the metadata of a Sentinel-2 ``.SAFE`` product, folder or zip, into a :class:`Product`.

Only XML is read: the product metadata (``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``) and
the tile geocoding at the top of ``GRANULE/*/MTD_TL.xml``; band files are checked in
the folder or zip listing, not opened. A product without ``MTD_TL.xml`` is the one
exception: the header of one band file per resolution gives the band grids (the
tile id alone does not fix the grid to better than tens of metres). Zips are read in
place (the XML through :mod:`zipfile`, the rasters later through GDAL's
``/vsizip/``), never extracted.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO

import antimeridian
from affine import Affine
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from .. import mgrs
from ..bands import NATIVE_RESOLUTION, SPECTRAL_BANDS, normalize_band
from ..exceptions import ProductError
from ._georef import FileGrid, GeoreferenceError, read_file_grid
from ._model import BandFile, Product
from ._names import parse_band_file, parse_product_name, tile_from_name
from ._xml import (
    MetadataError,
    ProductMetadata,
    TileMetadata,
    parse_product_metadata,
    parse_tile_metadata,
)

__all__ = ["read_product"]

#: Bands a product offers, in the order of :attr:`Product.bands`.
_BAND_ORDER: tuple[str, ...] = SPECTRAL_BANDS + ("SCL",)
#: Image files listed by the metadata that are not read as bands.
_IGNORED_FILES = frozenset({"TCI", "AOT", "WVP"})
_MTD_RE = re.compile(r"^MTD_MSIL(1C|2A)\.xml$", re.IGNORECASE)
_OLD_MTD_RE = re.compile(r"^S2[A-Z_]_OPER_MTD_SAF", re.IGNORECASE)
_TILE_MTD_RE = re.compile(r"^GRANULE/(?:[^/]+/)?MTD_TL\.xml$", re.IGNORECASE)
#: Real product metadata is ~60 kB; refuse absurd sizes (zip bombs, wrong files).
_MAX_XML_BYTES = 32 * 1024 * 1024
_REDOWNLOAD = "download the product again"
#: A zip member inflating more than this many times its stored size is a zip bomb:
#: Sentinel-2 XML deflates 5-13:1, band files are stored; deflate peaks near 1032:1.
_MAX_ZIP_RATIO = 200
#: Members smaller than this are never called bombs, whatever their ratio.
_MIN_BOMB_BYTES = 1 << 20
#: No member of a real product comes near this (a 10 m band JP2 is ~130 MB).
_MAX_MEMBER_BYTES = 4 << 30


# --------------------------------------------------------------------------- file access


class _Source(ABC):
    """The files of one product, in a folder or a zip; member names are relative to its root."""

    #: The ``.SAFE`` folder or ``.zip`` (absolute), as reported in errors.
    path: str
    #: Folder name of the product root (``NAME.SAFE``), or the zip's name.
    root_name: str

    def error(self, problem: str) -> ProductError:
        return ProductError(self.path, problem)

    @abstractmethod
    def find_product_mtd(self) -> str:
        """The member holding the product metadata (``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``)."""

    @abstractmethod
    def find_tile_mtds(self) -> list[str]:
        """Members named ``GRANULE/*/MTD_TL.xml`` (or ``GRANULE/MTD_TL.xml``)."""

    @abstractmethod
    def exists(self, member: str) -> bool:
        """Whether the file ``member`` exists."""

    @abstractmethod
    def find_basename(self, basename: str) -> str | None:
        """A member under ``GRANULE/`` with that file name, if any."""

    @abstractmethod
    def read(self, member: str) -> bytes:
        """The content of a (small, XML) member."""

    @abstractmethod
    def open(self, member: str) -> AbstractContextManager[IO[bytes]]:
        """A binary stream of ``member``, as a context manager."""

    @abstractmethod
    def gdal_path(self, member: str) -> str:
        """The path under which GDAL opens ``member``."""

    def close(self) -> None:  # noqa: B027 - optional hook, folders hold nothing open
        """Release open files."""


def _choose_mtd(source: _Source, names: Iterable[str], listing: Iterable[str] = ()) -> str:
    """The one product MTD among ``names``; ``listing`` (base names) hints at old formats."""
    found = sorted(names)
    if not found and any(_OLD_MTD_RE.match(n) for n in listing):
        raise source.error(
            "is a Sentinel-2 product in the old multi-tile format (before December 2016), "
            "which is not supported; download the reprocessed product from the Copernicus "
            "Data Space Ecosystem"
        )
    if not found:
        raise source.error(
            "no MTD_MSIL1C.xml or MTD_MSIL2A.xml found, so this is not a Sentinel-2 .SAFE "
            "product; pass the .SAFE folder itself (or the .zip the hub delivered)"
        )
    if len(found) > 1:
        raise source.error(
            f"holds several product metadata files ({', '.join(found)}); "
            "pass one product (.SAFE folder or .zip) at a time"
        )
    return found[0]


class _Folder(_Source):
    def __init__(self, root: str) -> None:
        self.path = root
        self.root_name = os.path.basename(root)
        self._listings: dict[str, frozenset[str]] = {}
        self._basenames: dict[str, str] | None = None

    def _listing(self, folder: str) -> frozenset[str]:
        """File names in ``folder`` (relative to the root), cached; empty if absent."""
        names = self._listings.get(folder)
        if names is None:
            try:
                with os.scandir(os.path.join(self.path, folder)) as entries:
                    names = frozenset(e.name for e in entries if e.is_file())
            except (FileNotFoundError, NotADirectoryError):
                names = frozenset()
            except OSError as exc:
                raise self.error(f"cannot list {folder or 'the folder'}: {exc}") from exc
            self._listings[folder] = names
        return names

    def find_product_mtd(self) -> str:
        names = self._listing("")
        found = [n for n in names if _MTD_RE.match(n)]
        if not found and not any(_OLD_MTD_RE.match(n) for n in names):
            nested = self._nested_product()
            if nested:
                raise self.error(
                    f"holds no product metadata at its top but contains the product "
                    f"{nested!r}; pass that folder instead"
                )
        return _choose_mtd(self, found, names)

    def _nested_product(self) -> str | None:
        try:
            with os.scandir(self.path) as entries:
                for entry in entries:
                    if entry.is_dir() and entry.name.upper().endswith(".SAFE"):
                        return os.path.join(self.path, entry.name)
        except OSError:
            return None
        return None

    def find_tile_mtds(self) -> list[str]:
        found = [f"GRANULE/{n}" for n in self._listing("GRANULE") if n.upper() == "MTD_TL.XML"]
        try:
            with os.scandir(os.path.join(self.path, "GRANULE")) as entries:
                granules = sorted(e.name for e in entries if e.is_dir())
        except OSError:
            granules = []
        for granule in granules:
            for name in self._listing(f"GRANULE/{granule}"):
                if name.upper() == "MTD_TL.XML":
                    found.append(f"GRANULE/{granule}/{name}")
        return found

    def exists(self, member: str) -> bool:
        folder, _, name = member.rpartition("/")
        return name in self._listing(folder)

    def find_basename(self, basename: str) -> str | None:
        if self._basenames is None:
            self._basenames = {}
            granule = os.path.join(self.path, "GRANULE")
            for folder, _dirs, files in os.walk(granule):
                rel = os.path.relpath(folder, self.path).replace(os.sep, "/")
                for name in files:
                    self._basenames.setdefault(name, f"{rel}/{name}")
        return self._basenames.get(basename)

    def read(self, member: str) -> bytes:
        full = os.path.join(self.path, member)
        try:
            if os.path.getsize(full) > _MAX_XML_BYTES:
                raise self.error(
                    f"{member} is larger than {_MAX_XML_BYTES >> 20} MB; "
                    f"it is not Sentinel-2 metadata - {_REDOWNLOAD}"
                )
            with open(full, "rb") as stream:
                return stream.read()
        except OSError as exc:
            raise self.error(f"cannot read {member}: {exc}") from exc

    @contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        try:
            stream = open(os.path.join(self.path, member), "rb")
        except OSError as exc:
            raise self.error(f"cannot read {member}: {exc}") from exc
        with stream:
            yield stream

    def gdal_path(self, member: str) -> str:
        return os.path.join(self.path, *member.split("/"))


#: Errors that :mod:`zipfile` raises for damaged, truncated or unsupported archives.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
)


_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def _unsafe_member(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member is dangerous (escaping path, zip bomb), or None."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or _DRIVE_RE.match(name):
        return "has an absolute path"
    if ".." in name.split("/"):
        return "points outside the archive (a '..' path)"
    if info.file_size > _MAX_MEMBER_BYTES:
        return f"claims {info.file_size:,} bytes uncompressed, far more than any product file"
    if info.file_size > _MIN_BOMB_BYTES and info.file_size > _MAX_ZIP_RATIO * max(
        info.compress_size, 1
    ):
        return (
            f"inflates {info.file_size:,} bytes from {info.compress_size:,} (more than "
            f"{_MAX_ZIP_RATIO}:1, a zip bomb)"
        )
    return None


class _Zip(_Source):
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except _ZIP_ERRORS as exc:
            try:
                with open(path, "rb") as stream:
                    looks_like_zip = stream.read(4) == b"PK\x03\x04"
            except OSError:
                looks_like_zip = False
            if isinstance(exc, UnicodeDecodeError):
                problem = (
                    "names a member with bytes that are not valid UTF-8 although the zip "
                    "declares UTF-8 names; the zip is damaged or was not made by a hub - "
                    f"{_REDOWNLOAD}"
                )
            elif looks_like_zip or path.lower().endswith(".zip"):
                problem = (
                    f"is not a readable zip archive ({type(exc).__name__}: {exc}); the "
                    f"download is truncated or corrupt - {_REDOWNLOAD}"
                )
            else:
                problem = (
                    "is neither a .SAFE folder nor a zip, so it cannot be a Sentinel-2 product; "
                    "pass a .SAFE folder or the .zip the hub delivered"
                )
            raise self.error(problem) from exc
        infos = self._zip.infolist()
        for info in infos:
            unsafe = _unsafe_member(info)
            if unsafe:
                self._zip.close()
                raise self.error(
                    f"holds the member {info.filename!r}, which {unsafe}; hub products never "
                    "do, so the zip is damaged or forged and nothing was read from it - "
                    f"delete it and {_REDOWNLOAD} from the Copernicus Data Space Ecosystem"
                )
        names = [i.filename for i in infos if not i.is_dir()]
        mtds = [n for n in names if _MTD_RE.match(posixpath.basename(n))]
        if mtds:
            depth = min(n.count("/") for n in mtds)
            mtds = [n for n in mtds if n.count("/") == depth]
        try:
            mtd = _choose_mtd(self, mtds, (posixpath.basename(n) for n in names))
        except ProductError:
            self._zip.close()
            raise
        self.prefix = mtd[: len(mtd) - len(posixpath.basename(mtd))]
        self._names = {n[len(self.prefix) :] for n in names if n.startswith(self.prefix)}
        stem = os.path.basename(path)
        self.root_name = self.prefix.rstrip("/").rsplit("/", 1)[-1] or stem
        self._mtd = mtd[len(self.prefix) :]
        self._basenames: dict[str, str] | None = None

    def find_product_mtd(self) -> str:
        return self._mtd

    def find_tile_mtds(self) -> list[str]:
        return sorted(n for n in self._names if _TILE_MTD_RE.match(n))

    def exists(self, member: str) -> bool:
        return member in self._names

    def find_basename(self, basename: str) -> str | None:
        if self._basenames is None:
            self._basenames = {}
            for name in sorted(self._names):
                if name.startswith("GRANULE/"):
                    self._basenames.setdefault(posixpath.basename(name), name)
        return self._basenames.get(basename)

    def _info(self, member: str) -> zipfile.ZipInfo:
        try:
            return self._zip.getinfo(self.prefix + member)
        except KeyError:
            raise self.error(f"the zip has no member {self.prefix + member}") from None

    def read(self, member: str) -> bytes:
        info = self._info(member)
        if info.file_size > _MAX_XML_BYTES:
            raise self.error(
                f"{member} is larger than {_MAX_XML_BYTES >> 20} MB; "
                f"it is not Sentinel-2 metadata - {_REDOWNLOAD}"
            )
        try:
            return self._zip.read(info)
        except _ZIP_ERRORS as exc:
            raise self.error(
                f"cannot read {member} from the zip ({type(exc).__name__}: {exc}); the "
                f"archive is corrupt - {_REDOWNLOAD}"
            ) from exc

    @contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        info = self._info(member)
        if info.file_size > _MAX_XML_BYTES:
            raise self.error(
                f"{member} is larger than {_MAX_XML_BYTES >> 20} MB; "
                f"it is not Sentinel-2 metadata - {_REDOWNLOAD}"
            )
        try:
            stream = self._zip.open(info)
        except _ZIP_ERRORS as exc:
            raise self.error(
                f"cannot read {member} from the zip ({type(exc).__name__}: {exc}); the "
                f"archive is corrupt - {_REDOWNLOAD}"
            ) from exc
        with stream:
            yield stream

    def gdal_path(self, member: str) -> str:
        # GDAL finds the archive by its .zip suffix; other names need the {} syntax.
        archive = self.path if self.path.lower().endswith(".zip") else "{" + self.path + "}"
        return f"/vsizip/{archive}/{self.prefix}{member}"

    def close(self) -> None:
        self._zip.close()


def _open_source(path: str) -> _Source:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise ProductError(
            shown,
            "has a name with bytes that are not UTF-8, which GDAL cannot open; rename the "
            "folder or file to a UTF-8 (plain ASCII) name",
        ) from None
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise ProductError(
            path, "does not exist; check the path of the .SAFE folder or .zip"
        ) from exc
    except OSError as exc:
        raise ProductError(path, f"cannot be accessed ({exc}); check its permissions") from exc
    if stat.S_ISDIR(mode):
        return _Folder(path)
    name = os.path.basename(path)
    if _MTD_RE.match(name) or name.lower() == "manifest.safe":  # a file of the product
        return _Folder(os.path.dirname(path))
    return _Zip(path)


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


def _member(entry: str, source: _Source, mtd: str) -> str:
    """A product-relative member path from an ``IMAGE_FILE`` entry, refusing escapes."""
    text = entry.strip().replace("\\", "/")
    normal = posixpath.normpath(text)
    if text.startswith("/") or normal == ".." or normal.startswith("../") or ":" in normal:
        raise source.error(
            f"{mtd} lists the image file {entry!r}, which points outside the product; "
            f"the metadata is corrupt or forged - {_REDOWNLOAD}"
        )
    return normal


def _band_entries(meta: ProductMetadata, source: _Source, mtd: str) -> dict[str, str]:
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


def _locate(source: _Source, stem: str, extensions: tuple[str, ...]) -> str | None:
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
    meta: ProductMetadata, source: _Source, members: Iterable[str], tile: TileMetadata | None
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


def _product_id(meta: ProductMetadata, source: _Source) -> str:
    name = (meta.product_uri or "").replace("\\", "/").rsplit("/", 1)[-1]
    if not name:
        name = source.root_name
    for suffix in (".zip", ".SAFE"):
        if name.upper().endswith(suffix.upper()):
            name = name[: -len(suffix)]
    return name


def _footprint(points: tuple[tuple[float, float], ...], source: _Source, mtd: str) -> BaseGeometry:
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
            f"the metadata is corrupt - {_REDOWNLOAD}"
        ) from exc
    if fixed.is_empty:
        raise source.error(f"the footprint (<EXT_POS_LIST>) of {mtd} is empty - {_REDOWNLOAD}")
    return fixed


def _file_grid(
    source: _Source, member: str, epsg: int, grids: dict[int, FileGrid], resolution: int
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
                f"{_REDOWNLOAD} (with its MTD_TL.xml), or pass require_bands=None and remove "
                "the damaged band files to read the other metadata"
            )
        grids[resolution] = found
    return found.shape, found.transform


def _grid(
    resolution: int, tile: TileMetadata, source: _Source, tile_mtd: str | None
) -> tuple[tuple[int, int], Affine]:
    size, position = tile.sizes.get(resolution), tile.geopositions.get(resolution)
    if size is None or position is None:
        element = "Size" if size is None else "Geoposition"
        raise source.error(
            f'{tile_mtd} lacks the required element <{element} resolution="{resolution}">; '
            f"the tile metadata is incomplete - {_REDOWNLOAD}"
        )
    ulx, uly, xdim, ydim = position
    return size, Affine(xdim, 0.0, ulx, 0.0, ydim, uly)


# --------------------------------------------------------------------------- public


def read_product(
    path: str | os.PathLike[str],
    require_bands: str | Iterable[str] | None = "all",
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

    Returns
    -------
    Product
        With band paths GDAL opens: absolute file paths for folders,
        ``/vsizip/{zip}/{member}`` for zips. Band grids come from ``MTD_TL.xml``;
        without it, from the header of one band file per resolution.

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
    absolute = os.path.abspath(os.path.expanduser(os.fspath(path)))
    source = _open_source(absolute)
    try:
        return _read(source, required)
    finally:
        source.close()


def _read(source: _Source, required: str | tuple[str, ...] | None) -> Product:
    mtd = source.find_product_mtd()
    level_match = _MTD_RE.match(posixpath.basename(mtd))
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
        except _ZIP_ERRORS as exc:  # decompression errors while streaming a zip member
            raise source.error(
                f"cannot read {tile_mtd} ({type(exc).__name__}: {exc}); the product is "
                f"corrupt - {_REDOWNLOAD}"
            ) from exc

    tile_id = _tile_id(meta, source, entries.values(), tile)
    try:
        epsg = mgrs.tile_epsg(tile_id)
    except ValueError as exc:
        raise source.error(f"its tile {tile_id!r} is not a valid MGRS tile") from exc
    if tile is not None and tile.epsg is not None and tile.epsg != epsg:
        raise source.error(
            f"{tile_mtd} gives the CRS EPSG:{tile.epsg}, but tile {tile_id} lies in the UTM "
            f"zone of EPSG:{epsg}; the tile metadata is corrupt - {_REDOWNLOAD}"
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
                f"{_REDOWNLOAD}, or pass require_bands=None to read the other metadata"
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
                f"incomplete - {_REDOWNLOAD}, or pass require_bands=None (or the list of "
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
