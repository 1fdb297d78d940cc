"""A folder of Sentinel-2 products (``.SAFE`` folders and ``.zip`` files) as a catalogue."""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd

from .. import _cloud
from ..exceptions import CatalogError, ProductError, SentinelCubeWarning
from ..safe import Product, read_product
from ..safe._container import MTD_RE as _MTD_RE
from ..safe._remote import filesystem, remote_error
from ..schema import products_frame
from ._base import Catalog
from ._query import SearchQuery

__all__ = ["LocalCatalog"]

_MTD_NAMES = ("MTD_MSIL1C.xml", "MTD_MSIL2A.xml")
_CACHE_VERSION = 1


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sentinel_cube"


class LocalCatalog(Catalog):
    """Search a local folder of Sentinel-2 products; the offline catalogue.

    The folder may hold ``.SAFE`` folders and ``.zip`` files (with the ``.SAFE``
    folder inside, as the hubs deliver them), at any depth. Listing reads each
    product's metadata XML, never its pixels, and remembers what it read: a
    rescan of an unchanged folder only looks at file sizes and times.

    Parameters
    ----------
    root : str or Path
        The archive folder.
    require_bands : "all", None or list of str
        Which band files each product must have to be listed (see
        :func:`sentinel_cube.safe.read_product`). ``None`` lists partial and
        metadata-only products too.
    cache : bool
        Remember parsed metadata between scans (in ``cache_dir``).
    cache_dir : str or Path, optional
        Where the cache lives; default ``$XDG_CACHE_HOME/sentinel_cube`` or
        ``~/.cache/sentinel_cube``.
    storage_options : dict, optional
        For an ``s3://`` root: ``key``, ``secret``, ``token``, ``profile``,
        ``endpoint_url``, ``region_name``, ``anon``, overriding the environment
        (see :func:`sentinel_cube.safe.read_product`).

    Notes
    -----
    ``root`` may be an ``s3://bucket/prefix``: one listing finds the products by
    key (``.zip`` objects, folders holding a product ``MTD_MSIL*.xml``) and each
    new or changed product's metadata is read with ranged GETs, never its pixels;
    the ``path`` column then holds ``s3://`` URLs that ``open_cube`` reads in place.

    Examples
    --------
    >>> cat = LocalCatalog("archive/")                                 # doctest: +SKIP
    >>> products = cat.search((19.0, 47.4, 19.2, 47.6), date=("2023-06-01", "2023-08-31"),
    ...                       producttype="S2MSI2A", cloudcoverpercentage=(0, 30))  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        require_bands: str | Sequence[str] | None = "all",
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.require_bands = require_bands
        self._storage_options = dict(storage_options or {})
        #: ``s3://bucket/prefix`` (without secrets) when the archive is on object storage
        self.url: str | None = None
        self._sizes: dict[str, int] = {}
        if _cloud.is_remote(os.fspath(root)):
            url = os.fspath(root).rstrip("/")
            if not url.lower().startswith("s3://"):
                raise CatalogError(
                    f"LocalCatalog root {_cloud.redact(url)!r}: only s3:// prefixes can be "
                    "listed; pass the URLs of HTTP products to read_product or open_cube"
                )
            self.url = _cloud.redact(url)
            self.root: Path = Path(".")
            identity = self.url
        else:
            self.root = Path(root).expanduser()
            if not self.root.is_dir():
                raise CatalogError(
                    f"LocalCatalog root {str(self.root)!r} is not a folder: pass the folder "
                    "that holds your .SAFE folders or .zip products"
                )
            identity = str(self.root.resolve())
        self._cache_path: Path | None = None
        if cache:
            key = hashlib.sha1(identity.encode()).hexdigest()[:16]
            self._cache_path = Path(cache_dir or _default_cache_dir()) / f"local-{key}.pickle"

    def __repr__(self) -> str:
        return f"LocalCatalog({self.url or str(self.root)!r})"

    # -- listing -------------------------------------------------------------------------
    def products(self) -> list[Product]:
        """Read every good product under ``root``; warn once per bad one and skip it."""
        cache = self._load_cache()
        fresh: dict[str, tuple[Any, Product | str]] = {}
        good: list[Product] = []
        candidates: Iterable[tuple[Path | str, Any]]
        if self.url is not None:
            candidates = self._remote_candidates()
        else:
            candidates = ((path, _signature(path)) for path in self._candidates())
        for path, signature in candidates:
            key = str(path)
            hit = cache.get(key)
            if hit is not None and hit[0] == signature:
                outcome = hit[1]
            else:
                try:
                    outcome = read_product(
                        path,
                        require_bands=self.require_bands,
                        storage_options=self._storage_options,
                    )
                except ProductError as error:
                    outcome = str(error)
            fresh[key] = (signature, outcome)
            if isinstance(outcome, str):
                warnings.warn(f"skipped {outcome}", SentinelCubeWarning, stacklevel=2)
            else:
                good.append(outcome)
        if fresh != cache:
            self._save_cache(fresh)
        return good

    def _search(self, query: SearchQuery) -> gpd.GeoDataFrame:
        """Every product under ``root``, with its size on disk."""
        frame = products_frame(self.products(), sizes=None)
        frame["size"] = [
            self._sizes.get(p) if _cloud.is_remote(p) else _size(Path(p)) for p in frame["path"]
        ]
        frame["size"] = frame["size"].astype("Int64")
        return frame

    def download(  # type: ignore[override]  # nothing to fetch: the paths are the answer
        self, products: gpd.GeoDataFrame, directory: Any = None, bands: Any = None
    ) -> list[Path]:
        """Local products need no download: return their paths (URLs on object storage)."""
        return [p if _cloud.is_remote(p) else Path(p) for p in products["path"]]

    # -- internals -----------------------------------------------------------------------
    def _candidates(self) -> Iterator[Path]:
        """Product candidates under root; warns about top-level folders holding none."""
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith("."):
                continue
            if _is_candidate(entry):
                yield entry
            elif entry.is_dir():
                found = list(_walk(entry))
                if not found:
                    warnings.warn(
                        f"skipped {entry}: not a Sentinel-2 product (no MTD_MSIL1C.xml or "
                        "MTD_MSIL2A.xml) and holds none",
                        SentinelCubeWarning,
                        stacklevel=3,
                    )
                yield from found

    def _remote_candidates(self) -> list[tuple[str, Any]]:
        """Products under the ``s3://`` prefix, found by key in one listing.

        A ``.zip`` is a product; so is the folder holding a ``MTD_MSIL1C.xml`` or
        ``MTD_MSIL2A.xml``. The signature of each (keys, sizes and ETags of its objects)
        comes from the same listing, so an unchanged product is not read again.
        """
        assert self.url is not None
        remote = _cloud.settings(self._storage_options, url=self.url)
        fs = filesystem(self.url, remote)
        fs.invalidate_cache()
        try:
            listing = fs.find(self.url, detail=True)
        except Exception as exc:
            error = remote_error(self.url, exc, remote, "listing the archive")
            raise CatalogError(f"LocalCatalog {error}") from None
        objects = {
            key: info
            for key, info in listing.items()
            if not any(part.startswith(".") for part in key.split("/")[1:])
        }
        roots: dict[str, list[tuple[str, int, str]]] = {}
        for key in objects:
            folder, _, name = key.rpartition("/")
            if _MTD_RE.match(name):
                roots.setdefault(folder, [])
        found: list[tuple[str, Any]] = []
        self._sizes = {}
        for key, info in sorted(objects.items()):
            size, tag = int(info.get("size") or 0), str(info.get("ETag") or "")
            owner = next((r for r in roots if key.startswith(r + "/")), None)
            if owner is not None:
                roots[owner].append((key[len(owner) + 1 :], size, tag))
            elif key.lower().endswith(".zip"):
                url = f"s3://{key}"
                self._sizes[url] = size
                found.append((url, (size, tag)))
        for root, members in roots.items():
            url = f"s3://{root}"
            self._sizes[url] = sum(size for _, size, _ in members)
            found.append((url, tuple(sorted(members))))
        if not found:
            warnings.warn(
                f"{self.url} holds no Sentinel-2 product (no .zip, no MTD_MSIL1C.xml or "
                "MTD_MSIL2A.xml)",
                SentinelCubeWarning,
                stacklevel=3,
            )
        return sorted(found, key=lambda item: item[0])

    def _load_cache(self) -> dict[str, tuple[Any, Product | str]]:
        if self._cache_path is None or not self._cache_path.exists():
            return {}
        try:
            with self._cache_path.open("rb") as handle:
                version, entries = pickle.load(handle)
        except Exception:  # a damaged or foreign cache is simply rebuilt
            return {}
        return entries if version == _CACHE_VERSION else {}

    def _save_cache(self, entries: dict[str, tuple[Any, Product | str]]) -> None:
        if self._cache_path is None:
            return
        try:
            self._cache_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._cache_path.with_suffix(f".{os.getpid()}.tmp")
            with temporary.open("wb") as handle:
                pickle.dump((_CACHE_VERSION, entries), handle)
            os.replace(temporary, self._cache_path)
        except OSError:  # a read-only home must not stop a listing
            pass


def _is_candidate(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".zip"
    if path.is_dir():
        return path.suffix.upper() == ".SAFE" or any((path / n).exists() for n in _MTD_NAMES)
    return False


def _walk(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if _is_candidate(entry):
            yield entry
        elif entry.is_dir():
            yield from _walk(entry)


def _signature(path: Path) -> tuple:
    """Sizes and modification times of every file of a product: changes when it does."""
    if path.is_file():
        stat = path.stat()
        return (stat.st_size, stat.st_mtime_ns)
    entries = []
    for folder, _, files in os.walk(path):
        for name in files:
            stat = os.stat(os.path.join(folder, name))
            entries.append((os.path.relpath(os.path.join(folder, name), path), stat.st_size,
                            stat.st_mtime_ns))  # fmt: skip
    return tuple(sorted(entries))


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
