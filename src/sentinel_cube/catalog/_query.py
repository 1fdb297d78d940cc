"""Search arguments shared by every catalogue: parsing and in-memory filtering.

Pure functions over the products table; no IO.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeAlias

import geopandas as gpd
import pandas as pd

from ..aoi import read_aoi

__all__ = ["DateLike", "filter_products", "parse_date_range", "parse_range"]

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
