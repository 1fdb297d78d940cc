"""Exact percentiles from histograms, with numpy's definition (pure numpy, no dask).

A uint16 band has 65,536 possible values, so a histogram of per-chunk
``bincount``s summed over chunks holds everything needed to find any order
statistic exactly. Reflectances read from Sentinel-2 products are
``(DN + offset) / 10000``, i.e. integers ``k`` on a 1e-4 grid; their histogram
over ``k`` is just as exact. From the two order statistics that bracket the
requested rank, :func:`percentile_from_histogram` interpolates exactly as
``numpy.nanpercentile(values, p)`` (``method="linear"``) does, dtype rules
included, so results are bit-identical.

numpy's definition (Hyndman & Fan type 7): for ``n`` sorted values ``v``, the
virtual index is ``i = (n - 1) * q`` with ``q = p / 100``; ``j = floor(i)``,
``g = i - j``; the result is ``v[j] + (v[j+1] - v[j]) * g`` (computed as
``v[j+1] - (v[j+1] - v[j]) * (1 - g)`` when ``g >= 0.5``), and ``v[n-1]`` at
``q = 1``. The arithmetic runs in the values' dtype as numpy's does (float32 for
float32 values, float64 for uint16).

No maintained library computes exact percentiles of out-of-core arrays in one
pass (``dask.array.percentile`` is approximate and 1-D), hence this module.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "GRID_OFFSET",
    "GRID_SCALE",
    "N_BINS",
    "grid_histogram",
    "order_statistic",
    "percentile_from_histogram",
    "uint16_histogram",
]

N_BINS = 65536
#: Reflectance grid: value = (bin - GRID_OFFSET) / GRID_SCALE, i.e. -0.1 .. 6.4535.
GRID_SCALE = 10000
GRID_OFFSET = 1000


def uint16_histogram(block: np.ndarray, nodata: int | None = 0) -> np.ndarray:
    """Counts of every uint16 value of ``block`` except ``nodata`` (length 65536, int64)."""
    counts = np.bincount(block.ravel(), minlength=N_BINS).astype(np.int64, copy=False)
    if nodata is not None:
        counts[nodata] = 0  # cheaper than filtering the values first
    return counts


def grid_histogram(block: np.ndarray) -> np.ndarray:
    """Counts of float values on the 1e-4 grid, NaN excluded; length 65537.

    The last element counts values that are *not* exactly ``float(k) / 10000``
    for an integer ``k`` in range (they cannot be placed exactly).
    """
    # in place where possible and without boolean compaction: this runs once per chunk
    # and costs most of an exact stretch (bincount alone is ~2.4 ms per MPix)
    values = block.ravel()
    real = values.dtype.type
    keys = np.multiply(values, real(GRID_SCALE))
    np.rint(keys, out=keys)  # NaN stays NaN
    placed = np.divide(keys, real(GRID_SCALE)) == values  # False for NaN and off the grid
    keys += real(GRID_OFFSET)
    placed &= keys >= 0
    placed &= keys < N_BINS
    np.putmask(keys, ~placed, real(N_BINS))  # everything else goes to the extra bin
    counts = np.bincount(keys.astype(np.int32), minlength=N_BINS + 1).astype(np.int64, copy=False)
    counts[N_BINS] -= np.count_nonzero(np.isnan(values))
    return counts


def order_statistic(cumulative: np.ndarray, rank: int) -> int:
    """Bin holding the ``rank``-th smallest value (0-based) given cumulative counts."""
    return int(np.searchsorted(cumulative, rank, side="right"))


def percentile_from_histogram(
    counts: np.ndarray, percentile: float, dtype: np.dtype | type, grid: bool = False
) -> float:
    """``numpy.nanpercentile(values, percentile)`` from the histogram of ``values``.

    Parameters
    ----------
    counts
        Histogram over the 65536 bins (uint16 values, or grid keys when ``grid``).
    percentile
        In ``[0, 100]``.
    dtype
        dtype of the original values (``uint16`` or ``float32``): numpy's
        interpolation arithmetic, hence the exact result, depends on it.
    grid
        Bins are 1e-4 reflectance keys (see :func:`grid_histogram`).

    Returns
    -------
    float
        NaN when the histogram is empty (numpy returns NaN with a warning).

    Examples
    --------
    >>> values = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype="uint16")
    >>> counts = np.bincount(values, minlength=N_BINS)
    >>> percentile_from_histogram(counts, 50, np.uint16)
    3.5
    >>> bool(percentile_from_histogram(counts, 98, np.uint16) == np.nanpercentile(values, 98))
    True
    """
    counts = np.asarray(counts, dtype=np.int64)[:N_BINS]
    n = int(counts.sum())
    if n == 0:
        return math.nan
    kind = np.dtype(dtype).type
    q = percentile / 100
    virtual = (n - 1) * q  # numpy's virtual index for method="linear"
    cumulative = np.cumsum(counts)
    if virtual >= n - 1:
        previous = following = n - 1
    else:
        previous = math.floor(virtual)
        following = previous + 1
    gamma = float(virtual - previous)
    a = _value(order_statistic(cumulative, previous), kind, grid)
    b = _value(order_statistic(cumulative, following), kind, grid)
    return float(_lerp(a, b, gamma))


def _value(index: int, kind: type, grid: bool):
    if grid:
        return kind(index - GRID_OFFSET) / kind(GRID_SCALE)
    return kind(index)


def _lerp(a, b, t: float):
    """numpy's ``_lerp`` on scalars of the data's dtype (same promotion rules)."""
    diff = b - a
    if t >= 0.5:
        return b - diff * (1 - t)
    return a + diff * t
