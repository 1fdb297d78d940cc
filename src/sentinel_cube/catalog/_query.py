"""Search arguments shared by every catalogue: parsing, checking and in-memory filtering.

:class:`SearchQuery` holds the arguments of ``Catalog.search`` once checked and
normalised; back-ends translate it into their requests, and
:meth:`SearchQuery.apply` filters their answers exactly. Pure; no IO.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeAlias

import geopandas as gpd
import pandas as pd
from shapely.geometry import MultiPolygon, Polygon

from ..aoi import read_aoi

__all__ = ["DateLike", "SearchQuery", "filter_products", "parse_date_range", "parse_range"]

DateLike: TypeAlias = str | date | datetime | pd.Timestamp


def _to_utc(value: DateLike, *, end: bool) -> pd.Timestamp:
    if isinstance(value, str) and value.strip().upper().startswith("NOW"):
        text = value.strip().upper()
        stamp = pd.Timestamp.now(tz="UTC")
        if text != "NOW":
            # sentinelsat-style "NOW-30DAYS"
            amount = text[3:].rstrip("S").replace("DAY", "")
            stamp = stamp + timedelta(days=int(amount))
        return stamp
    date_only = isinstance(value, date) and not isinstance(value, datetime)
    if isinstance(value, str):
        text = value.strip()
        date_only = len(text) == 10 or (len(text) == 8 and text.isdigit())
        try:
            stamp = pd.Timestamp(text)
        except ValueError as error:
            raise ValueError(
                f"date {value!r} is not a date (expected e.g. '2023-08-31')"
            ) from error
    elif date_only:
        stamp = pd.Timestamp(datetime.combine(value, time()))
    else:
        stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(UTC)
    else:
        stamp = stamp.tz_convert("UTC")
    if date_only and end:
        # an end given as a day includes the whole day
        stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return stamp


def parse_date_range(
    value: DateLike | tuple[DateLike | None, DateLike | None] | None,
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Turn ``date=`` into an inclusive ``(start, end)`` pair of UTC timestamps.

    A single date means that whole day; a day given as end includes the whole
    day; naive times are UTC; ``None`` leaves a side open.

    Examples
    --------
    >>> start, end = parse_date_range(("2023-08-01", "2023-08-31"))
    >>> str(start), str(end)
    ('2023-08-01 00:00:00+00:00', '2023-08-31 23:59:59.999999+00:00')
    """
    if value is None:
        return None, None
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"date must be a (start, end) pair, got {value!r}")
        start = None if value[0] is None else _to_utc(value[0], end=False)
        end = None if value[1] is None else _to_utc(value[1], end=True)
        if start is not None and end is not None and start > end:
            raise ValueError(f"date range {value!r} ends before it starts")
        return start, end
    return _to_utc(value, end=False), _to_utc(value, end=True)


def parse_range(value: Any, name: str) -> tuple[float, float] | None:
    """``(low, high)`` inclusive numeric range; a single number means ``(0, number)``."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return (0.0, float(value))
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from error
    if low > high:
        raise ValueError(f"{name}={value!r}: low must not exceed high")
    return low, high


def _as_set(value: Any, normalize=str) -> set | None:
    if value is None:
        return None
    if isinstance(value, str | int):
        return {normalize(value)}
    if isinstance(value, Iterable):
        return {normalize(v) for v in value}
    return {normalize(value)}


def filter_products(
    products: gpd.GeoDataFrame,
    aoi: Any = None,
    date: Any = None,
    platformname: Any = None,
    producttype: Any = None,
    cloudcoverpercentage: Any = None,
    tileid: Any = None,
    relativeorbitnumber: Any = None,
) -> gpd.GeoDataFrame:
    """Filter a products table in memory with the arguments of ``Catalog.search``.

    ``platformname`` matches ``"Sentinel-2"`` or a unit (``"Sentinel-2B"``,
    ``"S2B"``); ``producttype`` matches ``"S2MSI2A"`` or a level (``"L2A"``);
    a product with no cloud cover is dropped when a cloud range is given.
    """
    keep = pd.Series(True, index=products.index)
    start, end = parse_date_range(date)
    if start is not None:
        keep &= products["beginposition"] >= start
    if end is not None:
        keep &= products["beginposition"] <= end
    if platformname is not None:
        wanted = _as_set(platformname, lambda v: str(v).upper().replace("SENTINEL-", "S"))
        serial = products["platformserialidentifier"].str.upper().str.replace("SENTINEL-", "S")
        family = products["platformname"].str.upper().str.replace("SENTINEL-", "S")
        keep &= (serial.isin(wanted) | family.isin(wanted)).fillna(False).astype(bool)
    if producttype is not None:
        wanted = _as_set(producttype, lambda v: str(v).upper())
        level = products["processinglevel"].str.upper().str.replace("LEVEL-", "L")
        keep &= (
            (products["producttype"].str.upper().isin(wanted) | level.isin(wanted))
            .fillna(False)
            .astype(bool)
        )
    cloud = parse_range(cloudcoverpercentage, "cloudcoverpercentage")
    if cloud is not None:
        values = products["cloudcoverpercentage"]
        keep &= values.between(*cloud).fillna(False).astype(bool)
    if tileid is not None:
        wanted = _as_set(tileid, lambda v: str(v).upper().removeprefix("T"))
        keep &= products["tileid"].str.upper().isin(wanted).fillna(False).astype(bool)
    if relativeorbitnumber is not None:
        wanted = _as_set(relativeorbitnumber, int)
        keep &= products["relativeorbitnumber"].isin(wanted).fillna(False).astype(bool)
    if aoi is not None:
        keep &= products.intersects(read_aoi(aoi))
    return products[keep.to_numpy()]


#: Product type names of the processing levels (``"L2A"`` -> ``"S2MSI2A"``).
PRODUCT_TYPES = {
    "L1C": "S2MSI1C", "L2A": "S2MSI2A", "LEVEL-1C": "S2MSI1C", "LEVEL-2A": "S2MSI2A",
}  # fmt: skip


def _values(value: Any) -> tuple[Any, ...] | None:
    """One value or many as a tuple; a text or a number is one value."""
    if value is None:
        return None
    if isinstance(value, str | int | float) or not isinstance(value, Iterable):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class SearchQuery:
    """The arguments of ``Catalog.search``, checked and normalised once.

    Attributes
    ----------
    aoi : Polygon or MultiPolygon or None
        The AOI in lon/lat, as :func:`sentinel_cube.read_aoi` reads it.
    start, end : pandas.Timestamp or None
        Inclusive UTC bounds of the sensing time (see :func:`parse_date_range`).
    platformname, producttype, tileid, relativeorbitnumber : tuple or None
        The values asked for, as given (a single value becomes a 1-tuple).
    cloudcoverpercentage : (float, float) or None
        Inclusive range in percent (see :func:`parse_range`).
    limit : int or None
        At most this many products (the first in time order).

    Examples
    --------
    >>> query = SearchQuery.from_arguments(date="2023-08-10", tileid="T34TCT",
    ...                                    cloudcoverpercentage=30, limit=5)
    >>> query.tileid, query.tile_ids(), query.cloudcoverpercentage, str(query.end)
    (('T34TCT',), ['34TCT'], (0.0, 30.0), '2023-08-10 23:59:59.999999+00:00')
    >>> SearchQuery.from_arguments(producttype="L2A").product_types()
    ['S2MSI2A']
    """

    aoi: Polygon | MultiPolygon | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    platformname: tuple[Any, ...] | None = None
    producttype: tuple[Any, ...] | None = None
    cloudcoverpercentage: tuple[float, float] | None = None
    tileid: tuple[Any, ...] | None = None
    relativeorbitnumber: tuple[Any, ...] | None = None
    limit: int | None = None

    @classmethod
    def from_arguments(
        cls,
        aoi: Any = None,
        date: Any = None,
        platformname: Any = None,
        producttype: Any = None,
        cloudcoverpercentage: Any = None,
        tileid: Any = None,
        relativeorbitnumber: Any = None,
        limit: int | None = None,
    ) -> SearchQuery:
        """Check and normalise the arguments of ``Catalog.search``.

        Raises
        ------
        ValueError
            A date or range that cannot be read, or a range that ends before it starts.
        AOIError
            An AOI that cannot be read.
        """
        start, end = parse_date_range(date)
        return cls(
            aoi=None if aoi is None else read_aoi(aoi),
            start=start,
            end=end,
            platformname=_values(platformname),
            producttype=_values(producttype),
            cloudcoverpercentage=parse_range(cloudcoverpercentage, "cloudcoverpercentage"),
            tileid=_values(tileid),
            relativeorbitnumber=_values(relativeorbitnumber),
            limit=None if limit is None else int(limit),
        )

    @property
    def date(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None] | None:
        """``(start, end)``, or None when neither side is bounded."""
        return None if self.start is None and self.end is None else (self.start, self.end)

    def criteria(self) -> dict[str, Any]:
        """The search criteria as keyword arguments of :func:`filter_products`."""
        return {
            "aoi": self.aoi, "date": self.date, "platformname": self.platformname,
            "producttype": self.producttype, "cloudcoverpercentage": self.cloudcoverpercentage,
            "tileid": self.tileid, "relativeorbitnumber": self.relativeorbitnumber,
        }  # fmt: skip

    def product_types(self) -> list[str]:
        """Product type names asked for (levels such as ``"L2A"`` named as types)."""
        return [PRODUCT_TYPES.get(str(v).upper(), str(v).upper()) for v in self.producttype or ()]

    def tile_ids(self) -> list[str]:
        """MGRS tiles asked for, upper case without the ``T`` prefix."""
        return [str(t).upper().removeprefix("T") for t in self.tileid or ()]

    def orbits(self) -> list[int]:
        """Relative orbit numbers asked for."""
        return [int(o) for o in self.relativeorbitnumber or ()]

    def apply(self, products: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Keep the products matching every criterion exactly, then the first ``limit``."""
        found = filter_products(products, **self.criteria())
        return found if self.limit is None else found.iloc[: self.limit]
