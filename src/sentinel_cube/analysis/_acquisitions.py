"""How many acquisitions per day, week or month: distinct sensing days and products."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ._common import check_freq, resolve_group, sensing_times, utc_naive

__all__ = ["acquisitions"]

#: Units of the columns of :func:`acquisitions`.
ACQUISITION_UNITS = {
    "days": "distinct sensing days (UTC calendar days) in the period",
    "products": "products (one per tile and processing level) sensed in the period",
}


def acquisitions(
    products: pd.DataFrame,
    freq: str = "D",
    by: str | None = None,
    *,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Number of acquisitions per period: distinct sensing days and products.

    Parameters
    ----------
    products : DataFrame
        A products table (``beginposition`` is used; ``by`` names another column).
    freq : str
        ``"D"`` (days), ``"W"`` (weeks ending on Sunday, labelled by that Sunday, as pandas
        labels them) or ``"MS"`` (months, labelled by their first day); any pandas
        frequency works.
    by : str, optional
        Split the counts by a column: ``"platform"`` (``platformserialidentifier``),
        ``"tile"`` (``tileid``), ``"orbit"`` (``relativeorbitnumber``) or any column name;
        products without a value are counted in the group ``"unknown"``.
    start, end : date-like, optional
        Extend the periods to cover these dates (e.g. the search window), so that empty
        periods at the ends appear too. Naive dates are taken as UTC.

    Returns
    -------
    DataFrame
        Columns ``days`` (distinct UTC calendar days with at least one product) and
        ``products`` (number of products), both int64. Index ``period`` (tz-naive UTC
        timestamps labelling the periods), or a ``(period, <by column>)`` MultiIndex.
        Every period from the first to the last is present; empty periods (and groups
        without products in a period) count zero. ``attrs["units"]`` describes the
        columns.

    Examples
    --------
    >>> import pandas as pd
    >>> products = pd.DataFrame({
    ...     "beginposition": pd.to_datetime(
    ...         ["2023-06-01T09:45Z", "2023-06-01T09:45Z", "2023-06-16T09:45Z"]),
    ...     "tileid": ["34TCT", "34TDT", "34TCT"]})
    >>> acquisitions(products, "W")  # doctest: +NORMALIZE_WHITESPACE
                days  products
    period
    2023-06-04     1         2
    2023-06-11     0         0
    2023-06-18     1         1
    >>> monthly = acquisitions(products, "MS", by="tile")
    >>> monthly["products"].unstack()  # doctest: +NORMALIZE_WHITESPACE
    tileid      34TCT  34TDT
    period
    2023-06-01      2      1
    """
    check_freq(freq)
    times = sensing_times(products)
    frame = pd.DataFrame(
        {"time": times.to_numpy(), "day": times.dt.floor("D").to_numpy(), "products": 1},
    )
    column = None
    if by is not None:
        column = resolve_group(products, by)
        frame[column] = products[column].to_numpy()
    limits = [utc_naive(value, name) for value, name in ((start, "start"), (end, "end"))]
    anchors = [t for t in limits if t is not None]
    if len(frame):
        anchors += [frame["time"].min(), frame["time"].max()]
    if not anchors:
        return _empty(column)
    if column is None:
        result = _count(frame, freq, anchors)
    else:
        keys = frame[column]
        order = sorted(keys.dropna().unique())
        if keys.isna().any():  # products without a value form their own group
            keys = keys.astype(object).where(keys.notna(), "unknown")
            frame[column] = keys
            order.append("unknown")
        parts = {key: _count(frame[keys == key], freq, anchors) for key in order}
        if parts:
            result = pd.concat(parts, names=[column, "period"]).swaplevel().sort_index()
        else:
            result = _empty(column)
    result.attrs = {"freq": freq, "units": dict(ACQUISITION_UNITS)}
    return result


def _count(frame: pd.DataFrame, freq: str, anchors: list[pd.Timestamp]) -> pd.DataFrame:
    """Counts per period of ``frame``; ``anchors`` (zero-weight rows) fix the period range."""
    padding = pd.DataFrame({"time": anchors, "day": pd.NaT, "products": 0})
    rows = pd.concat([frame[["time", "day", "products"]], padding], ignore_index=True)
    counted = rows.resample(freq, on="time").agg({"day": "nunique", "products": "sum"})
    counted = counted.rename(columns={"day": "days"}).astype("int64")
    counted.index.name = "period"
    return counted[["days", "products"]]


def _empty(column: str | None) -> pd.DataFrame:
    index: pd.Index
    if column is None:
        index = pd.DatetimeIndex([], name="period")
    else:
        index = pd.MultiIndex.from_arrays(
            [pd.DatetimeIndex([]), pd.Index([], dtype=object)], names=["period", column]
        )
    return pd.DataFrame(
        {"days": pd.Series(dtype="int64"), "products": pd.Series(dtype="int64")}, index=index
    )
