"""Byte access to a product: its folder or zip, listed and read without extracting.

A :class:`ProductContainer` knows where the product root is (the folder holding
``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``), which members exist, how to read or
stream one, and the path under which GDAL opens it. :func:`open_container`
chooses the kind: :class:`FolderContainer` for ``.SAFE`` folders,
:class:`ZipContainer` for hub zips (read in place, refused when damaged or
hostile). The assembly of a :class:`~sentinel_cube.safe.Product` from what is
read lives in :mod:`sentinel_cube.safe._reader`.
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

from ..exceptions import ProductError

__all__ = [
    "MTD_RE",
    "REDOWNLOAD",
    "ZIP_ERRORS",
    "FolderContainer",
    "ProductContainer",
    "ZipContainer",
    "open_container",
]

#: The product metadata file of a level-1C or level-2A product.
MTD_RE = re.compile(r"^MTD_MSIL(1C|2A)\.xml$", re.IGNORECASE)
_OLD_MTD_RE = re.compile(r"^S2[A-Z_]_OPER_MTD_SAF", re.IGNORECASE)
_TILE_MTD_RE = re.compile(r"^GRANULE/(?:[^/]+/)?MTD_TL\.xml$", re.IGNORECASE)
#: Real product metadata is ~60 kB; refuse absurd sizes (zip bombs, wrong files).
_MAX_XML_BYTES = 32 * 1024 * 1024
#: The fix that error messages give for a damaged product.
REDOWNLOAD = "download the product again"
#: A zip member inflating more than this many times its stored size is a zip bomb:
#: Sentinel-2 XML deflates 5-13:1, band files are stored; deflate peaks near 1032:1.
_MAX_ZIP_RATIO = 200
#: Members smaller than this are never called bombs, whatever their ratio.
_MIN_BOMB_BYTES = 1 << 20
#: No member of a real product comes near this (a 10 m band JP2 is ~130 MB).
_MAX_MEMBER_BYTES = 4 << 30


class ProductContainer(ABC):
    """The files of one product, in a folder or a zip; member names are relative to its root.

    The root is the folder that holds ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml`` (in a
    zip, usually ``NAME.SAFE/``). Members are ``/``-separated paths below it.
    """

    #: The ``.SAFE`` folder or ``.zip`` (absolute), as reported in errors.
    path: str
    #: Folder name of the product root (``NAME.SAFE``), or the zip's name.
    root_name: str

    def error(self, problem: str) -> ProductError:
        """A :class:`~sentinel_cube.exceptions.ProductError` about this product."""
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


def _choose_mtd(source: ProductContainer, names: Iterable[str], listing: Iterable[str] = ()) -> str:
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


class FolderContainer(ProductContainer):
    """A product unpacked in a folder of the local file system."""

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
        found = [n for n in names if MTD_RE.match(n)]
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
                    f"it is not Sentinel-2 metadata - {REDOWNLOAD}"
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
ZIP_ERRORS = (
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


class ZipContainer(ProductContainer):
    """A product in a zip, read in place: members by :mod:`zipfile`, rasters by ``/vsizip/``."""

    def __init__(
        self, path: str, stream: IO[bytes] | None = None, gdal_archive: str | None = None
    ) -> None:
        self.path = path
        #: the archive as GDAL names it (``/vsis3/...`` for a remote one); default ``path``
        self._gdal_archive = gdal_archive or path
        self._stream = stream
        try:
            self._zip = zipfile.ZipFile(path if stream is None else stream)
        except ZIP_ERRORS as exc:
            try:
                if stream is None:
                    with open(path, "rb") as local:
                        looks_like_zip = local.read(4) == b"PK\x03\x04"
                else:
                    stream.seek(0)
                    looks_like_zip = stream.read(4) == b"PK\x03\x04"
            except OSError:
                looks_like_zip = False
            if isinstance(exc, UnicodeDecodeError):
                problem = (
                    "names a member with bytes that are not valid UTF-8 although the zip "
                    "declares UTF-8 names; the zip is damaged or was not made by a hub - "
                    f"{REDOWNLOAD}"
                )
            elif looks_like_zip or path.lower().endswith(".zip"):
                problem = (
                    f"is not a readable zip archive ({type(exc).__name__}: {exc}); the "
                    f"download is truncated or corrupt - {REDOWNLOAD}"
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
                    f"delete it and {REDOWNLOAD} from the Copernicus Data Space Ecosystem"
                )
        names = [i.filename for i in infos if not i.is_dir()]
        mtds = [n for n in names if MTD_RE.match(posixpath.basename(n))]
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

    def _metadata_info(self, member: str) -> zipfile.ZipInfo:
        """The entry of a metadata ``member``, refused when too large to be metadata."""
        info = self._info(member)
        if info.file_size > _MAX_XML_BYTES:
            raise self.error(
                f"{member} is larger than {_MAX_XML_BYTES >> 20} MB; "
                f"it is not Sentinel-2 metadata - {REDOWNLOAD}"
            )
        return info

    def _corrupt(self, member: str, exc: BaseException) -> ProductError:
        return self.error(
            f"cannot read {member} from the zip ({type(exc).__name__}: {exc}); the "
            f"archive is corrupt - {REDOWNLOAD}"
        )

    def read(self, member: str) -> bytes:
        info = self._metadata_info(member)
        try:
            return self._zip.read(info)
        except ZIP_ERRORS as exc:
            raise self._corrupt(member, exc) from exc

    @contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        info = self._metadata_info(member)
        try:
            stream = self._zip.open(info)
        except ZIP_ERRORS as exc:
            raise self._corrupt(member, exc) from exc
        with stream:
            yield stream

    def gdal_path(self, member: str) -> str:
        # GDAL finds the archive by its .zip suffix; other names need the {} syntax.
        path = self._gdal_archive
        archive = path if path.lower().endswith(".zip") else "{" + path + "}"
        return f"/vsizip/{archive}/{self.prefix}{member}"

    def close(self) -> None:
        self._zip.close()
        if self._stream is not None:
            self._stream.close()


def open_container(path: str) -> ProductContainer:
    """The container of the product at ``path`` (absolute): a folder, a file in it, or a zip.

    Raises
    ------
    ProductError
        ``path`` does not exist, cannot be accessed, is not UTF-8, or is neither a
        product folder nor a readable, safe zip holding one.
    """
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
        return FolderContainer(path)
    name = os.path.basename(path)
    if MTD_RE.match(name) or name.lower() == "manifest.safe":  # a file of the product
        return FolderContainer(os.path.dirname(path))
    return ZipContainer(path)
