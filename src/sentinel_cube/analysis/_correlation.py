"""Correlation between image-content percentages (or any numeric columns)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..exceptions import SentinelCubeError
from ._common import CONTENT_COLUMNS, check_columns, check_numeric, column_label

__all__ = ["METHODS", "correlation"]

#: Correlation coefficients :func:`correlation` computes.
METHODS: tuple[str, ...] = ("pearson", "spearman", "kendall")


def correlation(
    products: pd.DataFrame,
    columns: Sequence[str] = CONTENT_COLUMNS,
    method: str = "pearson",
) -> pd.DataFrame:
    """Correlation matrix of numeric columns over the products.

    Parameters
    ----------
    products : DataFrame
        A products table.
    columns : sequence of str
        At least two numeric columns; by default vegetation, water, snow/ice and cloud
        cover percentages.
    method : str
        ``"pearson"`` (linear), ``"spearman"`` (rank) or ``"kendall"`` (rank, tau-b).

    Returns
    -------
    DataFrame
        Square, symmetric, unitless coefficients in [-1, 1], rows and columns named by
        ``columns``; computed over the products where both columns have a value. NaN
        where a column is constant or fewer than two products have both values.
        ``attrs`` holds ``method``, ``n`` (products with every column) and ``labels``.

    Examples
    --------
    >>> import pandas as pd
    >>> products = pd.DataFrame({"vegetationpercentage": [10.0, 20.0, 40.0],
    ...                          "cloudcoverpercentage": [60.0, 40.0, 0.0]})
    >>> correlation(products, ["vegetationpercentage", "cloudcoverpercentage"])
                          vegetationpercentage  cloudcoverpercentage
    vegetationpercentage                   1.0                  -1.0
    cloudcoverpercentage                  -1.0                   1.0
    """
    if method not in METHODS:
        raise SentinelCubeError(f"method={method!r} is not one of {', '.join(METHODS)}")
    columns = check_columns(products, columns, "columns")
    if len(columns) < 2 or len(set(columns)) != len(columns):
        raise SentinelCubeError(f"columns={columns!r}: name at least two different columns")
    check_numeric(products, columns, "columns")
    frame = pd.DataFrame({c: products[c].astype("float64").to_numpy() for c in columns})
    result = frame.corr(method=method, min_periods=2)
    result.index.name = None
    result.columns.name = None
    result.attrs = {
        "method": method,
        "n": int(frame.notna().all(axis=1).sum()),
        "labels": {c: column_label(c) for c in columns},
    }
    return result
