"""Shared helpers of the metadata analytics: column checks, sensing times, labels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from pandas.tseries.frequencies import to_offset

from ..exceptions import SentinelCubeError

__all__ = [
    "CONTENT_COLUMNS",
    "GROUP_ALIASES",
    "check_columns",
    "check_freq",
    "check_numeric",
    "column_label",
    "resolve_group",
    "sensing_times",
    "utc_naive",
]

#: Image-content percentages studied by default (vegetation, water, snow/ice, clouds).
CONTENT_COLUMNS: tuple[str, ...] = (
    "vegetationpercentage",
    "waterpercentage",
    "snowicepercentage",
    "cloudcoverpercentage",
)

#: Short names accepted for ``by`` and the products-table columns they stand for.
GROUP_ALIASES: dict[str, str] = {
    "platform": "platformserialidentifier",
    "tile": "tileid",
    "orbit": "relativeorbitnumber",
    "relative_orbit": "relativeorbitnumber",
}

_LABELS = {
    "vegetationpercentage": "vegetation",
    "notvegetatedpercentage": "not vegetated",
    "waterpercentage": "water",
    "snowicepercentage": "snow/ice",
    "cloudcoverpercentage": "cloud cover",
    "aoi_fraction": "AOI fraction",
    "platformserialidentifier": "platform",
    "tileid": "tile",
    "relativeorbitnumber": "relative orbit",
}


def column_label(column: str) -> str:
    """A short human label for a products-table column, with its unit.

    Examples
    --------
    >>> column_label("snowicepercentage"), column_label("aoi_fraction"), column_label("size")
    ('snow/ice (%)', 'AOI fraction', 'size')
    """
    name = _LABELS.get(column, column)
    if column.endswith("percentage"):
        if column not in _LABELS:
            name = column.removesuffix("percentage")
        return f"{name} (%)"
    return name


def sensing_times(products: pd.DataFrame) -> pd.Series:
    """Sensing start times as tz-naive UTC timestamps (``beginposition``)."""
    check_columns(products, ["beginposition"], "products")
    times = pd.to_datetime(products["beginposition"], utc=True)
    return times.dt.tz_convert("UTC").dt.tz_localize(None)


def check_columns(products: pd.DataFrame, columns: Iterable[str], argument: str) -> list[str]:
    """Return ``columns`` as a list after checking that ``products`` has every one."""
    if not isinstance(products, pd.DataFrame):
        raise SentinelCubeError(
            f"products must be a products table (GeoDataFrame from a catalogue search), "
            f"got {type(products).__name__}"
        )
    wanted = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in wanted if c not in products.columns]
    if missing:
        raise SentinelCubeError(
            f"{argument}: the products table has no column {', '.join(map(repr, missing))}; "
            f"available: {', '.join(map(str, products.columns))}"
        )
    return wanted


def check_numeric(products: pd.DataFrame, columns: Sequence[str], argument: str) -> None:
    """Raise when one of ``columns`` is not numeric."""
    for column in columns:
        if not pd.api.types.is_numeric_dtype(products[column]):
            raise SentinelCubeError(
                f"{argument}: column {column!r} is not numeric ({products[column].dtype}); "
                "pass numeric columns such as the *percentage columns"
            )


def check_freq(freq: str) -> str:
    """Check that ``freq`` is a pandas frequency (``"D"``, ``"W"``, ``"MS"``, ``"10D"`` ...)."""
    try:
        to_offset(freq)
    except (TypeError, ValueError):
        raise SentinelCubeError(
            f"freq={freq!r} is not a pandas frequency: use 'D' (days), 'W' (weeks ending on "
            "Sunday) or 'MS' (months)"
        ) from None
    return freq


def resolve_group(products: pd.DataFrame, by: str) -> str:
    """The column that ``by`` names (aliases: platform, tile, orbit)."""
    column = GROUP_ALIASES.get(by, by)
    check_columns(products, [column], f"by={by!r}")
    return column


def utc_naive(value: Any, name: str) -> pd.Timestamp | None:
    """``value`` as a tz-naive UTC timestamp (naive input is taken as UTC); None stays None."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise SentinelCubeError(
            f"{name}={value!r} is not a date: pass 'YYYY-MM-DD', a datetime or a Timestamp"
        ) from None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp
