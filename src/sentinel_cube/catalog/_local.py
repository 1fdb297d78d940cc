"""A folder of Sentinel-2 products (``.SAFE`` folders and ``.zip`` files) as a catalogue."""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd

from ..exceptions import CatalogError, ProductError, SentinelCubeWarning
from ..safe import Product, read_product
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
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise CatalogError(
                f"LocalCatalog root {str(self.root)!r} is not a folder: pass the folder that "
                "holds your .SAFE folders or .zip products"
            )
        self.require_bands = require_bands
        self._cache_path: Path | None = None
        if cache:
            key = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:16]
            self._cache_path = Path(cache_dir or _default_cache_dir()) / f"local-{key}.pickle"

    def __repr__(self) -> str:
        return f"LocalCatalog({str(self.root)!r})"

    # -- listing -------------------------------------------------------------------------
    def products(self) -> list[Product]:
        """Read every good product under ``root``; warn once per bad one and skip it."""
        cache = self._load_cache()
        fresh: dict[str, tuple[Any, Product | str]] = {}
        good: list[Product] = []
        for path in self._candidates():
            key = str(path)
            signature = _signature(path)
            hit = cache.get(key)
            if hit is not None and hit[0] == signature:
                outcome = hit[1]
            else:
                try:
                    outcome = read_product(path, require_bands=self.require_bands)
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
        frame["size"] = [_size(Path(p)) for p in frame["path"]]
        frame["size"] = frame["size"].astype("Int64")
        return frame

    def download(  # type: ignore[override]  # nothing to fetch: the paths are the answer
        self, products: gpd.GeoDataFrame, directory: Any = None, bands: Any = None
    ) -> list[Path]:
        """Local products need no download: return their paths."""
        return [Path(p) for p in products["path"]]

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
