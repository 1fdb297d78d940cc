"""Exact percentiles from histograms, with numpy's definition (pure numpy, no dask).

A uint16 band has 65,536 possible values, so a histogram of per-chunk
counts summed over chunks holds everything needed to find any order
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
import threading

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
    counts = np.zeros(N_BINS, dtype=np.int64)
    values = block.ravel()
    for start in range(0, values.size, _PIECE):
        piece = values[start : start + _PIECE]
        index = _SCRATCH.arrays(piece.size)[-1]
        np.copyto(index, piece)  # to intp here, not in a new array per call
        np.add.at(counts, index, 1)
    if nodata is not None:
        counts[nodata] = 0  # cheaper than filtering the values first
    return counts


def grid_histogram(block: np.ndarray) -> np.ndarray:
    """Counts of float values on the 1e-4 grid, NaN excluded; length 65537.

    Bin ``k + GRID_OFFSET`` counts the values equal (bit for bit) to
    ``float32(k) / 10000``. The last element counts the values that are not
    (off the grid, out of its range, infinite, or ``-0.0``: numpy orders it as
    equal to ``0.0``, yet returns it when it is an order statistic).
    """
    values = block.ravel()
    if values.dtype != np.float32:
        return _grid_histogram_exact(values)
    # counts[i] is key i - GRID_OFFSET - 1: the grid's 65536 keys, one below and one above
    counts = np.zeros(N_BINS + 2, dtype=np.int64)
    placed = nan = 0
    with np.errstate(over="ignore"):  # huge values: infinite keys, outside the range anyway
        for start in range(0, values.size, _PIECE):
            placed_here, nan_here = _count_grid_piece(values[start : start + _PIECE], counts)
            placed += placed_here
            nan += nan_here
    if placed + nan < values.size:  # values off the grid: their keys are not theirs
        return _grid_histogram_exact(values)
    hist = counts[1:]  # the grid's keys, then those above its range
    hist[N_BINS] += counts[0]  # and those below
    hist[GRID_OFFSET] -= nan  # NaN were counted as key 0
    _move_negative_zeros(values, hist)
    return hist


def _count_grid_piece(piece: np.ndarray, counts: np.ndarray) -> tuple[int, int]:
    """Add the keys of float32 ``piece`` to ``counts``; return (values on the grid, NaN).

    A value is on the grid when its key ``k = rint(value * 10000)`` gives it back as
    ``float32(k) / 10000``. Keys of values off the grid are counted too (as whatever
    key they round to): the caller discards these counts when any value is off.
    """
    n = piece.size
    keys, check, mask, index32, index = _SCRATCH.arrays(n)
    np.multiply(piece, _F32_SCALE, out=keys)
    np.rint(keys, out=keys)  # NaN stays NaN
    np.divide(keys, _F32_SCALE, out=check)  # how a grid value is computed, in float32
    placed = int(np.count_nonzero(np.equal(check, piece, out=mask)))  # False for NaN
    nan = 0
    if placed < n:  # NaN, or values off the grid
        nan = int(np.count_nonzero(np.isnan(piece, out=mask)))
        np.copyto(keys, _F32_ZERO, where=mask)  # counted as key 0, taken off by the caller
    if n and (keys.min() < -GRID_OFFSET or keys.max() >= N_BINS - GRID_OFFSET):
        np.clip(keys, -GRID_OFFSET - 1, N_BINS - GRID_OFFSET, out=keys)  # to the two ends
    # integral and |keys| <= 2**16: exact; float32 to int32 then to intp is quicker than
    # float32 to intp
    np.add(keys, _F32_OFFSET_1, out=index32, casting="unsafe")
    np.copyto(index, index32)
    np.add.at(counts, index, 1)
    return placed, nan


def _grid_histogram_exact(values: np.ndarray) -> np.ndarray:
    """:func:`grid_histogram` of any float dtype: slower, for blocks with values off the grid."""
    real = values.dtype.type
    with np.errstate(over="ignore"):  # huge values: infinite keys, not placed
        keys = np.multiply(values, real(GRID_SCALE))
    np.rint(keys, out=keys)  # NaN stays NaN
    placed = np.divide(keys, real(GRID_SCALE)) == values  # False for NaN and off the grid
    keys += real(GRID_OFFSET)
    placed &= keys >= 0
    placed &= keys < N_BINS
    np.putmask(keys, ~placed, real(N_BINS))  # everything else goes to the extra bin
    counts = np.bincount(keys.astype(np.intp), minlength=N_BINS + 1).astype(np.int64, copy=False)
    counts[N_BINS] -= np.count_nonzero(np.isnan(values))
    _move_negative_zeros(values, counts)
    return counts


def _move_negative_zeros(values: np.ndarray, hist: np.ndarray) -> None:
    """Move ``-0.0`` from key 0 to the last bin of ``hist`` (in place)."""
    if hist[GRID_OFFSET] == 0:  # no zero at all: the usual case, nothing to read
        return
    negative_zeros = np.count_nonzero(np.signbit(values) & (values == 0))
    hist[GRID_OFFSET] -= negative_zeros
    hist[N_BINS] += negative_zeros


# Hand-written rather than one numpy expression per block: temporaries the size of a
# block are fresh memory at every call (page faults cost as much as the arithmetic),
# and np.bincount converts its input to a new intp array. Pieces of _PIECE elements
# reuse per-thread arrays that stay in the CPU cache; np.add.at accumulates the
# counts of every piece into one histogram (it also counts faster than np.bincount).
# Measured on 1024 x 1024 reflectance blocks, CPU time: 3.5-7 ms per block before,
# about 2 ms now, of which about 0.9 ms counting; pieces of 2**16 to 2**18 values are
# within noise of each other.
_PIECE = 1 << 17
_F32_SCALE = np.float32(GRID_SCALE)
_F32_ZERO = np.float32(0)
_F32_OFFSET_1 = np.float32(GRID_OFFSET + 1)


class _Scratch(threading.local):
    """Per-thread work arrays for pieces of up to ``_PIECE`` values (2.6 MB)."""

    def __init__(self) -> None:
        self._arrays: tuple[np.ndarray, ...] = ()

    def arrays(self, n: int) -> tuple[np.ndarray, ...]:
        """keys, check (float32), mask (bool), index32 (int32), index (intp) of length n."""
        if not self._arrays or len(self._arrays[0]) < n:
            size = max(n, _PIECE)
            self._arrays = tuple(
                np.empty(size, dtype=dtype)
                for dtype in (np.float32, np.float32, bool, np.int32, np.intp)
            )
        return tuple(a[:n] for a in self._arrays)


_SCRATCH = _Scratch()


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
