"""Image-content percentages over time: per-period series and seasonal cycles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import SentinelCubeError
from ._common import (
    CONTENT_COLUMNS,
    check_columns,
    check_freq,
    check_numeric,
    column_label,
    sensing_times,
    utc_naive,
)

__all__ = ["HOWS", "SEASONS", "climatology", "landcover"]

#: Reductions :func:`landcover` applies within a period.
HOWS: tuple[str, ...] = ("mean", "median", "min", "max", "std", "count")
#: Meteorological seasons, labelled by their months' initials.
SEASONS: tuple[str, ...] = ("DJF", "MAM", "JJA", "SON")
_SEASON_OF_MONTH = {
    12: "DJF",
    1: "DJF",
    2: "DJF",
    3: "MAM",
    4: "MAM",
    5: "MAM",
    6: "JJA",
    7: "JJA",
    8: "JJA",
    9: "SON",
    10: "SON",
    11: "SON",
}
_CLIMATOLOGY_BY = ("month", "season", "week")


def landcover(
    products: pd.DataFrame,
    freq: str = "W",
    columns: Sequence[str] = CONTENT_COLUMNS,
    how: str = "mean",
    *,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Time series of image-content percentages, reduced per period.

    Parameters
    ----------
    products : DataFrame
        A products table.
    freq : str
        ``"W"`` (weeks ending on Sunday, labelled by it) or ``"MS"`` (months, labelled by
        their first day); any pandas frequency works (``"D"``, ``"10D"`` ...).
    columns : sequence of str
        Numeric columns; by default vegetation, water, snow/ice and cloud cover (%).
    how : str
        ``"mean"``, ``"median"``, ``"min"``, ``"max"``, ``"std"`` (sample standard
        deviation) or ``"count"`` (products with a value) over the products of a period.
        Products without a value (NaN, e.g. a catalogue that does not report it) are
        skipped.
    start, end : date-like, optional
        Extend the periods to cover these dates (naive dates are UTC).

    Returns
    -------
    DataFrame
        One column per entry of ``columns`` (in percent for the percentages; ``count``
        gives int64 counts), index ``period`` (tz-naive UTC labels of the periods, every
        period from the first to the last). Periods without products are NaN (0 for
        ``count``). ``attrs["units"]`` and ``attrs["labels"]`` describe the columns.

    Examples
    --------
    >>> import pandas as pd
    >>> products = pd.DataFrame({
    ...     "beginposition": pd.to_datetime(["2023-06-01T09:45Z", "2023-06-02T09:45Z",
    ...                                      "2023-08-20T09:45Z"]),
    ...     "waterpercentage": [2.0, 4.0, 1.0]})
    >>> landcover(products, "MS", columns=["waterpercentage"])  # doctest: +NORMALIZE_WHITESPACE
                waterpercentage
    period
    2023-06-01              3.0
    2023-07-01              NaN
    2023-08-01              1.0
    """
    check_freq(freq)
    if how not in HOWS:
        raise SentinelCubeError(f"how={how!r} is not one of {', '.join(HOWS)}")
    columns = check_columns(products, columns, "columns")
    if not columns:
        raise SentinelCubeError("columns is empty: name at least one numeric column")
    check_numeric(products, columns, "columns")
    times = sensing_times(products)
    frame = pd.DataFrame(
        {c: products[c].astype("float64").to_numpy() for c in columns},
        index=pd.DatetimeIndex(times.to_numpy()),
    )
    limits = [utc_naive(v, n) for v, n in ((start, "start"), (end, "end")) if v is not None]
    if limits:
        padding = pd.DataFrame({c: np.nan for c in columns}, index=pd.DatetimeIndex(limits))
        frame = pd.concat([frame, padding])
    result = frame.sort_index().resample(freq).agg(how)
    if how == "count":
        result = result.astype("int64")
    result.index.name = "period"
    result.columns.name = None
    result.attrs = {
        "freq": freq,
        "how": how,
        "units": {c: "products" if how == "count" else _unit(c) for c in columns},
        "labels": {c: column_label(c) for c in columns},
    }
    return result


def climatology(products: pd.DataFrame, column: str, by: str = "month") -> pd.DataFrame:
    """The seasonal cycle of one column: statistics per calendar month, season or week.

    Parameters
    ----------
    products : DataFrame
        A products table.
    column : str
        A numeric column, e.g. ``"snowicepercentage"``.
    by : str
        ``"month"`` (1-12), ``"season"`` (``DJF``, ``MAM``, ``JJA``, ``SON``) or
        ``"week"`` (ISO week 1-53), from the UTC sensing time; all years pooled.

    Returns
    -------
    DataFrame
        Columns ``mean``, ``median``, ``std`` (sample), ``min``, ``max`` (in the column's
        unit) and ``count`` (products with a value), one row per month/season/week, all of
        them present (NaN statistics and count 0 where no product falls).

    Examples
    --------
    >>> import pandas as pd
    >>> products = pd.DataFrame({
    ...     "beginposition": pd.to_datetime(["2022-01-10T09:45Z", "2023-01-12T09:45Z",
    ...                                      "2023-07-06T09:45Z"]),
    ...     "snowicepercentage": [30.0, 50.0, 0.0]})
    >>> climatology(products, "snowicepercentage", by="season")  # doctest: +NORMALIZE_WHITESPACE
            mean  median        std   min   max  count
    season
    DJF     40.0    40.0  14.142136  30.0  50.0      2
    MAM      NaN     NaN        NaN   NaN   NaN      0
    JJA      0.0     0.0        NaN   0.0   0.0      1
    SON      NaN     NaN        NaN   NaN   NaN      0
    """
    if by not in _CLIMATOLOGY_BY:
        raise SentinelCubeError(f"by={by!r} is not one of {', '.join(_CLIMATOLOGY_BY)}")
    if not isinstance(column, str):
        raise SentinelCubeError(f"column must be one column name, got {column!r}")
    check_columns(products, [column], "column")
    check_numeric(products, [column], "column")
    times = sensing_times(products)
    order: list[Any]
    if by == "month":
        keys, order = times.dt.month, list(range(1, 13))
    elif by == "season":
        keys, order = times.dt.month.map(_SEASON_OF_MONTH), list(SEASONS)
    else:
        keys, order = times.dt.isocalendar().week.astype("int64"), list(range(1, 54))
    values = pd.Series(products[column].astype("float64").to_numpy(), index=keys.to_numpy())
    grouped = values.groupby(level=0)
    result = pd.DataFrame(
        {
            "mean": grouped.mean(),
            "median": grouped.median(),
            "std": grouped.std(),
            "min": grouped.min(),
            "max": grouped.max(),
            "count": grouped.count(),
        }
    ).reindex(order)
    result["count"] = result["count"].fillna(0).astype("int64")
    result.index.name = by
    result.attrs = {"column": column, "label": column_label(column), "unit": _unit(column)}
    return result


def _unit(column: str) -> str:
    if column.endswith("percentage"):
        return "%"
    return "fraction" if column.endswith("fraction") else ""
