"""One ``Catalog`` base: the search and download every back-end shares.

:meth:`Catalog.search` checks and normalises its arguments into a
:class:`~sentinel_cube.catalog._query.SearchQuery`, asks the back-end's
:meth:`Catalog._search` for candidates and filters them exactly (and cuts at
``limit``) in one place. :meth:`Catalog.download` resolves product names, keeps
what is already complete on disk and hands the rest to the back-end's
:meth:`Catalog._fetch`, which records its outcome in the shared
:class:`~sentinel_cube.catalog.DownloadResult`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from ..exceptions import CatalogError
from ..schema import INDEX_NAME, empty_products, normalize_products
from ._paths import safe_name
from ._query import SearchQuery
from ._result import DownloadResult
from ._safe_parts import complete_product

__all__ = [
    "Catalog",
    "DownloadRequest",
    "Wanted",
    "product_name",
    "product_rows",
    "rows_frame",
    "text_or_none",
]


@dataclass(frozen=True)
class DownloadRequest:
    """The options of one ``Catalog.download`` call, for the back-end's ``_fetch``."""

    directory: Path
    bands: Sequence[str] | None
    checksum: bool
    max_workers: int | None
    wait: bool
    timeout: float
    poll_interval: float
    progress: bool


@dataclass(frozen=True)
class Wanted:
    """A product to fetch: its id, its checked name (no ``.SAFE``) and its table row."""

    product_id: str
    name: str
    row: pd.Series


class Catalog(ABC):
    """A catalogue of Sentinel-2 products: search it, download from it.

    A back-end implements :meth:`_search` (translate a
    :class:`~sentinel_cube.catalog._query.SearchQuery` into its request, parse the
    answer into the products table) and, if it downloads, :meth:`_fetch`. The
    checks, the exact filtering, the ``limit`` and the download bookkeeping live
    here.

    Examples
    --------
    >>> from sentinel_cube.schema import empty_products
    >>> class Frames(Catalog):
    ...     def __init__(self, frame):
    ...         self.frame = frame
    ...     def _search(self, query):
    ...         return self.frame  # the base filters exactly
    >>> len(Frames(empty_products()).search(date="2023-08-10", tileid="34TCT"))
    0
    """

    def search(
        self,
        aoi: Any = None,
        date: Any = None,
        platformname: Any = None,
        producttype: Any = None,
        cloudcoverpercentage: Any = None,
        tileid: Any = None,
        relativeorbitnumber: Any = None,
        limit: int | None = None,
    ) -> gpd.GeoDataFrame:
        """Products matching every given criterion, as the products GeoDataFrame.

        Parameters
        ----------
        aoi
            Anything :func:`sentinel_cube.read_aoi` takes; keeps products whose
            footprint intersects it.
        date
            ``(start, end)`` (strings, dates or datetimes; an end day is included
            whole) or a single day.
        platformname
            ``"Sentinel-2"`` or a unit such as ``"Sentinel-2B"`` / ``"S2B"``.
        producttype
            ``"S2MSI1C"``, ``"S2MSI2A"`` (or ``"L1C"``, ``"L2A"``).
        cloudcoverpercentage
            ``(low, high)`` inclusive range in percent.
        tileid, relativeorbitnumber
            One value or a list.
        limit : int, optional
            At most this many products (in time order).

        Returns
        -------
        geopandas.GeoDataFrame
            One row per product, indexed by product id, sorted by time then tile;
            see :mod:`sentinel_cube.schema`. Empty (with all columns) when nothing
            matches. Back-ends whose products also sit on object storage add an
            ``s3path`` column (:data:`sentinel_cube.schema.S3PATH`) that
            :func:`~sentinel_cube.open_cube` reads in place when a row has no ``path``.
        """
        query = SearchQuery.from_arguments(
            aoi, date, platformname, producttype, cloudcoverpercentage, tileid,
            relativeorbitnumber, limit,
        )  # fmt: skip
        return query.apply(self._search(query))

    @abstractmethod
    def _search(self, query: SearchQuery) -> gpd.GeoDataFrame:
        """Candidate products for ``query`` (at least those matching; the base filters)."""

    def download(
        self,
        products: gpd.GeoDataFrame | pd.DataFrame,
        directory: str | os.PathLike[str] = ".",
        bands: Sequence[str] | None = None,
        checksum: bool = True,
        max_workers: int | None = None,
        *,
        wait: bool = False,
        timeout: float = 3600.0,
        poll_interval: float = 60.0,
        progress: bool = True,
    ) -> DownloadResult:
        """Download products (whole zips, or only ``bands`` plus metadata as partial SAFEs).

        Parameters
        ----------
        products : GeoDataFrame
            Rows of :meth:`search` (or a list of product names where the
            catalogue can look them up).
        directory : path
            Where products go: ``NAME.zip`` (whole product) or ``NAME.SAFE`` (bands).
        bands : list of str, optional
            e.g. ``["B02", "B03", "B04", "SCL"]``: only those band files and the
            metadata, found through the product's ``manifest.safe``.
        checksum : bool
            Verify MD5/BLAKE3 (whole products) or the manifest checksums (files).
        max_workers : int, optional
            Products downloaded at once; default the catalogue's ``max_connections``.
        wait : bool
            Wait for offline products to come online (polling every
            ``poll_interval`` s, at most ``timeout`` s); otherwise they are ordered
            and returned as pending.
        progress : bool
            Show progress bars.

        Returns
        -------
        DownloadResult
        """
        target = Path(directory).expanduser()
        target.mkdir(parents=True, exist_ok=True)
        request = DownloadRequest(
            target, bands, checksum, max_workers, wait, timeout, poll_interval, progress
        )
        result = DownloadResult()
        wanted: list[Wanted] = []
        for pid, row in product_rows(products):
            try:
                name = safe_name(product_name(row, pid), "product name")
                done = self._on_disk(target, name, bands)
            except CatalogError as error:
                result.failed[pid] = str(error)
                continue
            if done is not None:
                result.skipped[pid] = done
            else:
                wanted.append(Wanted(pid, name, row))
        if wanted:
            self._fetch(wanted, request, result)
        return result

    def _on_disk(self, directory: Path, name: str, bands: Sequence[str] | None) -> Path | None:
        """Product ``name`` if already complete in ``directory`` for ``bands``, else None."""
        return complete_product(directory, name, bands)

    def _fetch(self, wanted: list[Wanted], request: DownloadRequest, result: DownloadResult):
        """Fetch ``wanted`` products; file each under downloaded, pending or failed."""
        raise CatalogError(f"{type(self).__name__} does not download products")


def product_rows(products: Any) -> Iterator[tuple[str, pd.Series]]:
    """``(product id, row)`` of a products table, or of a list of product names."""
    if isinstance(products, pd.DataFrame):
        for pid, row in products.iterrows():
            yield str(pid), row
        return
    for name in products:  # product names
        yield str(name), pd.Series({"title": str(name)})


def product_name(row: pd.Series, pid: Any) -> str:
    """The product's name without ``.SAFE`` / ``.zip``: its title, else its id."""
    title = text_or_none(row.get("title")) or str(pid)
    return title.removesuffix(".SAFE").removesuffix(".zip")


def text_or_none(value: Any) -> str | None:
    """A table cell as stripped text; None for missing values and blanks."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def rows_frame(
    rows: Iterable[Mapping[str, Any]], extras: Sequence[str], *, unique: bool = False
) -> gpd.GeoDataFrame:
    """The products table from row dicts (with ``product_id`` and ``geometry`` keys).

    ``extras`` are the back-end's text columns (``uuid``, ``catalog``...), present
    even when there are no rows; ``unique`` keeps the first row of each product.

    Examples
    --------
    >>> list(rows_frame([], ["uuid"]).columns)[-2:]
    ['geometry', 'uuid']
    """
    rows = list(rows)
    if not rows:
        frame = empty_products()
        for column in extras:
            frame[column] = pd.Series(dtype="string")
        return frame
    table = pd.DataFrame(rows).set_index(INDEX_NAME)
    if unique:
        table = table[~table.index.duplicated(keep="first")]
    geometry = table.pop("geometry")
    for column in extras:
        table[column] = table[column].astype("string")
    return normalize_products(gpd.GeoDataFrame(table, geometry=list(geometry), crs=4326))
