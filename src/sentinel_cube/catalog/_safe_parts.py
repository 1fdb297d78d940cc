"""Partial ``.SAFE`` products: only some bands plus the metadata, laid out as ESA does.

The product's ``manifest.safe`` lists every file with its size and checksum
(MD5, SHA3-256 in newer products). :func:`select_entries` keeps the metadata
files a reader needs (``MTD_MSIL*.xml``, ``GRANULE/*/MTD_TL.xml``,
``INSPIRE.xml``) and the band files at their native resolution; :func:`fetch_safe`
downloads them into a hidden staging folder and renames it to ``NAME.SAFE`` once
every file is verified, so a ``.SAFE`` on disk is always a valid (partial) product
that :func:`sentinel_cube.read_product` reads with ``require_bands=[...]``.
Adding bands later downloads only the missing files straight into the existing
``.SAFE`` (each file still appears only when complete and verified).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..bands import NATIVE_RESOLUTION, normalize_band
from ..exceptions import CatalogError
from ..safe._manifest import ManifestEntry, parse_manifest
from ..safe._names import parse_band_file
from ..safe._xml import MetadataError
from ._download import FileDownloader, RemoteFile
from ._errors import DownloadError
from ._paths import safe_join, safe_name, safe_relpath

__all__ = [
    "METADATA_PATTERNS",
    "complete_product",
    "fetch_files",
    "ProgressSink",
    "fetch_safe",
    "safe_is_complete",
    "select_entries",
]

#: Files every partial product keeps (glob patterns relative to the ``.SAFE`` folder).
METADATA_PATTERNS: tuple[str, ...] = (
    "MTD_MSIL1C.xml",
    "MTD_MSIL2A.xml",
    "MTD_MSIL2AP.xml",
    "INSPIRE.xml",
    "GRANULE/*/MTD_TL.xml",
)
MANIFEST = "manifest.safe"


class ProgressSink:
    """Receives byte counts of one product; ``total`` is announced once known."""

    def set_total(self, total: int | None) -> None:  # pragma: no cover - interface
        """The product's expected number of bytes (None if unknown)."""

    def update(self, count: int) -> None:  # pragma: no cover - interface
        """``count`` bytes were written (negative on a restart)."""


def _is_metadata(href: str) -> bool:
    return any(fnmatch.fnmatchcase(href, pattern) for pattern in METADATA_PATTERNS)


def select_entries(
    entries: Iterable[ManifestEntry], bands: Sequence[str] | None, product: str
) -> list[ManifestEntry]:
    """The manifest entries to download for ``bands`` (None: every entry).

    Band files are taken at the band's native resolution (``R10m`` for B04,
    ``R20m`` for SCL), the one :func:`sentinel_cube.read_product` reads.

    Raises
    ------
    CatalogError
        A requested band has no file in the manifest (names the product and the
        bands it has).

    Examples
    --------
    >>> stem = "GRANULE/G/IMG_DATA/R{0}m/T34TCT_20230810T094549_B04_{0}m.jp2"
    >>> e = [ManifestEntry("MTD_MSIL2A.xml", 1, None, None),
    ...      ManifestEntry(stem.format(10), 9, None, None),
    ...      ManifestEntry(stem.format(20), 3, None, None)]
    >>> [x.href.rsplit("/", 1)[-1] for x in select_entries(e, ["B4"], "S2B_X")]
    ['MTD_MSIL2A.xml', 'T34TCT_20230810T094549_B04_10m.jp2']
    """
    entries = list(entries)
    if bands is None:
        return entries
    wanted = list(dict.fromkeys(normalize_band(b) for b in bands))
    chosen: list[ManifestEntry] = []
    found: set[str] = set()
    available: set[str] = set()
    for entry in entries:
        if _is_metadata(entry.href):
            chosen.append(entry)
            continue
        parsed = parse_band_file(entry.href)
        if parsed is None or "/IMG_DATA/" not in f"/{entry.href}":
            continue
        native = NATIVE_RESOLUTION.get(parsed.band)
        if parsed.resolution is not None and parsed.resolution != native:
            continue
        available.add(parsed.band)
        if parsed.band in wanted:
            chosen.append(entry)
            found.add(parsed.band)
    missing = [b for b in wanted if b not in found]
    if missing:
        have = ", ".join(sorted(available)) or "none"
        raise CatalogError(
            f"{product}: its manifest.safe lists no file for band(s) {', '.join(missing)} "
            f"(bands it has: {have}); request only bands the product has (SCL exists only "
            "in Level-2A products)"
        )
    return chosen


def safe_is_complete(safe_dir: Path, entries: Iterable[ManifestEntry]) -> bool:
    """Whether every entry exists in ``safe_dir`` with its manifest size."""
    for entry in entries:
        path = safe_dir / safe_relpath(entry.href, "manifest path")
        if not path.is_file() or (entry.size is not None and path.stat().st_size != entry.size):
            return False
    return True


def complete_product(directory: Path, name: str, bands: Sequence[str] | None) -> Path | None:
    """The path of product ``name`` if already complete in ``directory`` for ``bands``.

    A ``NAME.zip`` (whole product) satisfies any request; a ``NAME.SAFE`` one for
    ``bands`` when its manifest lists those band files and all are present with
    their manifest sizes. Final names exist only after verification, so no
    checksum is recomputed.
    """
    whole = directory / f"{name}.zip"
    if whole.is_file():
        return whole
    safe = directory / f"{name}.SAFE"
    if bands is None or not (safe / MANIFEST).is_file():
        return None
    try:
        entries = select_entries(parse_manifest((safe / MANIFEST).read_bytes()), bands, name)
    except (MetadataError, CatalogError):
        return None
    return safe if safe_is_complete(safe, entries) else None


def _read_manifest(path: Path, product: str) -> tuple[ManifestEntry, ...]:
    try:
        return parse_manifest(path.read_bytes(), f"{product}.SAFE/{MANIFEST}")
    except MetadataError as error:
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"{product}: the downloaded manifest.safe is not valid XML ({error}); it was "
            "deleted - run the download again",
            path=str(path),
        ) from None


def fetch_safe(
    name: str,
    directory: Path,
    bands: Sequence[str] | None,
    *,
    node_url: Callable[[str], str],
    downloader: FileDownloader,
    verify: bool = True,
    progress: ProgressSink | None = None,
) -> tuple[Path, bool]:
    """Download ``bands`` (plus metadata) of product ``name`` as ``directory/name.SAFE``.

    Parameters
    ----------
    name : str
        Product name without ``.SAFE``.
    directory : Path
        Download folder.
    bands : list of str or None
        Bands to fetch; None fetches every file of the manifest.
    node_url : callable
        Maps a path inside the ``.SAFE`` (``"GRANULE/.../B04_10m.jp2"``) to its URL.
    downloader : FileDownloader
        Does the resumable, verified transfers.
    verify : bool
        Check manifest checksums.
    progress : ProgressSink, optional
        Receives the byte counts.

    Returns
    -------
    (Path, bool)
        The ``.SAFE`` folder and whether anything was downloaded.
    """
    name = safe_name(name, "product name")
    final = directory / f"{name}.SAFE"
    staging = directory / f".{name}.SAFE.partial"
    root = final if (final / MANIFEST).is_file() else staging
    root.mkdir(parents=True, exist_ok=True)
    fetched = False
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        # no checksum is published for the manifest itself: parsing it is the check
        downloader.fetch(RemoteFile(node_url(MANIFEST), MANIFEST), root, verify=False)
        fetched = True
    entries = select_entries(_read_manifest(manifest_path, name), bands, name)
    todo = [e for e in entries if not safe_is_complete(root, [e])]
    if progress is not None:
        sizes = [e.size for e in todo]
        progress.set_total(None if None in sizes else sum(s for s in sizes if s is not None))
    for entry in todo:
        checksums = {entry.checksum_name or "MD5": entry.checksum} if entry.checksum else {}
        remote = RemoteFile(node_url(entry.href), entry.href, entry.size, checksums)
        outcome = downloader.fetch(
            remote, root, verify=verify, progress=progress.update if progress else None
        )
        fetched = fetched or not outcome.skipped
    if root == staging:
        if final.exists():  # a concurrent run finished first: keep its copy
            return final, fetched
        os.replace(staging, final)
    return final, fetched


def fetch_files(
    final: Path,
    files: Sequence[RemoteFile],
    downloader: FileDownloader,
    *,
    verify: bool = True,
    progress: ProgressSink | None = None,
) -> tuple[Path, bool]:
    """Download ``files`` (paths relative to ``final``) into the folder ``final``.

    A new folder is filled under a hidden staging name and renamed to ``final``
    when every file is verified; an existing ``final`` receives the missing files
    directly (each appears only when complete).

    Returns
    -------
    (Path, bool)
        ``final`` and whether anything was downloaded.
    """
    staging = final.with_name(f".{final.name}.partial")
    root = final if final.is_dir() else staging
    root.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        sizes = [f.size for f in files]
        progress.set_total(None if None in sizes else sum(s for s in sizes if s is not None))
    fetched = False
    for remote in files:
        outcome = downloader.fetch(
            remote, root, verify=verify, progress=progress.update if progress else None
        )
        fetched = fetched or not outcome.skipped
    if root == staging:
        if final.exists():
            return final, fetched
        os.replace(staging, final)
    return final, fetched


def node_path(href: str) -> list[str]:
    """The components of a path inside the ``.SAFE`` (checked), for node URLs.

    Examples
    --------
    >>> node_path("./GRANULE/G/MTD_TL.xml")
    ['GRANULE', 'G', 'MTD_TL.xml']
    """
    return safe_relpath(href, "manifest path").split("/")


def local_path(directory: Path, name: str) -> Path:
    """Where a product's ``.SAFE`` lives (checked to stay inside ``directory``)."""
    return safe_join(directory, f"{safe_name(name, 'product name')}.SAFE", "product name")
