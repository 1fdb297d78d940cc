"""Exact percentiles of a cube and the percentile stretch, lazily and in one pass."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from ..exceptions import SentinelCubeError
from ._percentile import (
    N_BINS,
    grid_histogram,
    percentile_from_histogram,
    uint16_histogram,
)

__all__ = ["cube_percentiles", "stretch"]

METHODS = ("auto", "histogram", "grid", "radix")


def cube_percentiles(
    cube: xr.DataArray,
    percentiles: Sequence[float] = (2, 98),
    dims: Sequence[str] = ("time", "y", "x"),
    method: str = "auto",
) -> xr.DataArray:
    """Exact percentiles of ``cube`` over ``dims``, no data excluded.

    Equal, bit for bit, to ``numpy.nanpercentile(values, p)`` (method
    ``"linear"``) of the valid values (not NaN; not 0 for uint16 DN cubes) of
    each group, computed from histograms in one pass over the data:

    - ``"histogram"`` (uint16): per-chunk counts of the 65,536 values,
      summed in a tree reduction; lazy.
    - ``"grid"`` (float reflectance read from products, ``(DN + offset) / 1e4``):
      the same histogram over the 1e-4 grid; lazy. A value off the grid raises
      at compute time.
    - ``"radix"`` (any float32 or float64): exact radix selection on the
      order-preserving bit pattern, 16 bits per pass (computes the data twice for
      float32, four times for float64, eagerly).
    - ``"auto"``: ``histogram`` for uint16 (and uint8) cubes, lazily. For float
      cubes it computes now: ``grid`` when the cube says it holds reflectances read
      from products (``sentinel_cube_units`` attr, set by
      :func:`sentinel_cube.open_cube`), falling back to ``radix`` when any value
      turns out to be off the grid (attributes can outlive what they describe),
      ``radix`` otherwise. Float16 values are taken as float32.

    Returns
    -------
    xarray.DataArray
        Dims: the dims not reduced (e.g. ``band``) plus ``percentile``; NaN for
        groups with no valid value.

    Examples
    --------
    >>> values = np.array([[[[0.1, 0.4], [0.2, np.nan]]]], dtype="float32")
    >>> cube = xr.DataArray(values, dims=("time", "band", "y", "x"))
    >>> cube_percentiles(cube, (0, 50, 100)).values
    array([[0.1..., 0.2..., 0.4...]])
    """
    dims = tuple(dims)
    missing = [d for d in dims if d not in cube.dims]
    if missing:
        raise SentinelCubeError(f"dims {missing} are not dims of the cube {cube.dims}")
    if not percentiles:
        raise SentinelCubeError("percentiles is empty")
    for p in percentiles:
        if not 0 <= p <= 100:
            raise SentinelCubeError(f"percentile {p} is outside [0, 100]")
    explicit = method != "auto"
    method = _method(cube, method)
    keep = [d for d in cube.dims if d not in dims]
    ordered = cube.transpose(*keep, *dims)
    data = ordered.data if isinstance(ordered.data, da.Array) else da.from_array(ordered.data)
    if data.dtype == np.uint8:
        data = data.astype(np.uint16)  # the same values, the same percentiles
    elif data.dtype == np.float16:
        data = data.astype(np.float32)
    n_keep = len(keep)
    options: dict[str, Any] = {"percentiles": tuple(percentiles), "dtype_name": str(data.dtype)}
    values: Any
    if method == "radix":
        values = _radix_percentiles(data, n_keep, tuple(percentiles))
    elif method == "grid" and not explicit:  # checked now: off the grid falls back to radix
        counts = np.asarray(_histograms(data, n_keep, grid=True).compute())
        if counts[..., -1].any():
            values = _radix_percentiles(data, n_keep, tuple(percentiles))
        else:
            values = _percentiles_of(counts, grid=True, **options)
    else:
        hist = _histograms(data, n_keep, grid=(method == "grid"))
        values = da.map_blocks(
            _percentiles_of,
            hist,
            grid=method == "grid",
            chunks=(*hist.chunks[:-1], (len(percentiles),)),
            dtype=np.float64,
            **options,
        )
    coords: dict[Any, Any] = {d: cube[d] for d in keep if d in cube.coords}
    coords["percentile"] = ("percentile", np.asarray(percentiles, dtype=np.float64))
    return xr.DataArray(values, dims=(*keep, "percentile"), coords=coords, name="percentiles")


def stretch(
    cube: xr.DataArray,
    percentiles: tuple[float, float] = (2, 98),
    dims: Sequence[str] = ("time", "y", "x"),
    out: str = "uint8",
    method: str = "auto",
) -> xr.DataArray:
    """Percentile stretch: ``(value - low) / (high - low)`` clipped to ``[0, 1]``.

    ``low``/``high`` are the exact percentiles of :func:`cube_percentiles`. With
    ``dims=("time", "y", "x")`` every frame of a band shares one stretch, so
    frames compare; ``dims=("y", "x")`` stretches each frame on its own.

    Parameters
    ----------
    cube
        A ``(time, band, y, x)`` cube (or any sub-selection keeping ``dims``).
    percentiles
        ``(low, high)`` in percent.
    out
        ``"uint8"``: ``round(255 * stretched)``, 0 for no data; ``"float"``:
        float32 in ``[0, 1]``, NaN for no data.

    method
        See :func:`cube_percentiles`; ``"auto"`` works on any cube: uint16 DN,
        reflectance, and any float (aggregates, computed values).

    Returns
    -------
    xarray.DataArray
        Lazy when ``cube`` is (numpy when it is numpy); coords
        ``stretch_low``/``stretch_high`` hold the percentiles, as numbers. Where
        ``low == high`` the stretched value is 0.

    Notes
    -----
    The percentiles are computed **now**, in one pass over ``cube`` that holds no
    more than a chunk and a histogram per group at a time (two to four passes for
    floats off the reflectance grid, see :func:`cube_percentiles`). A pooled
    percentile depends on every pixel, so it has to be known before the first
    output pixel: left lazy in the same graph, every input chunk would stay in
    memory until the last one was counted, and each later computation (every
    time step :func:`sentinel_cube.to_zarr` commits, every preview) would count
    them all again. Computed once, the bounds are small constants: each output
    chunk then depends on its own input chunk only, so a stretched cube larger
    than memory streams to Zarr, GeoTIFF or PNG. Computing the stretched pixels
    reads ``cube`` a second time; for a cube that fits in memory,
    ``stretch(cube.persist())`` reads each chunk once.

    Examples
    --------
    With ``cube`` from :func:`sentinel_cube.open_cube`:

    >>> rgb = stretch(cube.sel(band=["B04", "B03", "B02"]), (2, 98))
    >>> rgb.dtype, rgb.dims
    (dtype('uint8'), ('time', 'band', 'y', 'x'))
    >>> red = cube.sel(band="B04").values
    >>> bool(rgb.stretch_low.sel(band="B04") == np.nanpercentile(red, 2))
    True

    DN cubes count 0 as no data:

    >>> dn = np.arange(0, 100, dtype="uint16").reshape(1, 1, 10, 10)
    >>> out = stretch(xr.DataArray(dn, dims=("time", "band", "y", "x")), (10, 90))
    >>> out.stretch_low.values, out.stretch_high.values
    (array([10.8]), array([89.2]))
    >>> out.values[0, 0, 0, :4]
    array([0, 0, 0, 0], dtype=uint8)
    """
    if out not in ("uint8", "float"):
        raise SentinelCubeError(f"out={out!r}: use 'uint8' or 'float'")
    if len(percentiles) != 2 or percentiles[0] > percentiles[1]:
        raise SentinelCubeError(f"percentiles={percentiles!r} must be (low, high) with low <= high")
    bounds = cube_percentiles(cube, percentiles, dims, method).compute()  # see Notes
    low = bounds.isel(percentile=0, drop=True)
    high = bounds.isel(percentile=1, drop=True)
    dtype = np.uint8 if out == "uint8" else np.float32
    result = xr.apply_ufunc(
        _stretch_block, cube, low, high, dask="parallelized", output_dtypes=[dtype],
        keep_attrs=True, kwargs={"out": out},  # coordinates keep theirs (the CRS)
    )  # fmt: skip
    result = result.transpose(*cube.dims)
    result = result.assign_coords(stretch_low=low, stretch_high=high)
    result.attrs = {
        "stretch_percentiles": list(percentiles),
        "stretch_dims": list(dims),
        "nodata": 0 if out == "uint8" else float("nan"),
    }
    result.name = cube.name
    return result


# ----------------------------------------------------------------------------- internals


def _stretch_block(values: np.ndarray, low: np.ndarray, high: np.ndarray, out: str) -> np.ndarray:
    """The stretch of one block: ``low``/``high`` broadcast against it.

    One float64 array per block, every step in place: a chain of xarray operations
    makes a new array at each step and costs about ten times as much.
    """
    scaled = values.astype(np.float64)
    if values.dtype.kind in "iu":
        np.copyto(scaled, np.nan, where=values == 0)  # DN 0: no data
    span = np.asarray(high - low, dtype=np.float64)
    flat = ~(span > 0)  # low == high (or no valid value): stretched to 0
    np.subtract(scaled, low, out=scaled)
    np.divide(scaled, np.where(flat, 1.0, span), out=scaled)
    if flat.any():
        np.copyto(scaled, 0.0, where=flat & ~np.isnan(scaled))
    np.clip(scaled, 0, 1, out=scaled)  # NaN stays NaN
    if out == "float":
        return scaled.astype(np.float32)
    np.multiply(scaled, 255, out=scaled)
    np.rint(scaled, out=scaled)  # half to even
    np.copyto(scaled, 0.0, where=np.isnan(scaled))  # no data: 0
    return scaled.astype(np.uint8)


def _method(cube: xr.DataArray, method: str) -> str:
    if method not in METHODS:
        raise SentinelCubeError(f"method={method!r} is not one of {', '.join(METHODS)}")
    dtype = cube.dtype
    if method == "auto":
        if dtype in (np.uint8, np.uint16):
            return "histogram"
        if dtype.kind != "f":
            raise SentinelCubeError(
                f"cannot compute exact percentiles of a {dtype} cube: convert it to uint16 or "
                "float32 (e.g. cube.astype('float32')) first"
            )
        reflectance = cube.attrs.get("sentinel_cube_units") == "reflectance"
        # the attribute is a hint only: the grid histogram is checked (see cube_percentiles)
        return "grid" if reflectance and dtype == np.float32 else "radix"
    if method == "histogram" and dtype not in (np.uint8, np.uint16):
        raise SentinelCubeError("method='histogram' needs a uint16 cube (units='dn')")
    if method == "grid" and dtype != np.float32:
        raise SentinelCubeError("method='grid' needs a float32 cube")
    if method == "radix" and dtype not in (np.float16, np.float32, np.float64):
        raise SentinelCubeError("method='radix' needs a float32 or float64 cube")
    return method


def _histograms(data: da.Array, n_keep: int, grid: bool) -> da.Array:
    """Histogram per kept index: shape (kept..., bins), summed over reduced axes."""
    n_bins = N_BINS + 1 if grid else N_BINS
    block_chunks = [c if axis < n_keep else (1,) * len(c) for axis, c in enumerate(data.chunks)]
    per_block = da.map_blocks(
        _block_histograms,
        data,
        n_keep=n_keep,
        grid=grid,
        new_axis=data.ndim,
        chunks=(*block_chunks, (n_bins,)),
        dtype=np.int64,
    )
    reduced = tuple(range(n_keep, data.ndim))
    if not reduced:
        return per_block
    # a tree of sums that adds the histograms as they are: ``Array.sum`` first copies
    # each block's histogram, then concatenates groups of them before summing
    return da.reduction(
        per_block, _as_is, _add_all, combine=_add_all, axis=reduced, dtype=np.int64,
        concatenate=False,
    )  # fmt: skip


def _as_is(hist: np.ndarray, axis: Any = None, keepdims: bool = True) -> np.ndarray:
    return hist  # a block's histogram already has length 1 along the reduced axes


def _add_all(hists: Any, axis: Any = None, keepdims: bool = True) -> np.ndarray:
    """Sum of histograms given as (nested lists of) arrays of the same shape."""
    flat = list(_leaves(hists))
    total = flat[0].copy()
    for hist in flat[1:]:
        total += hist
    return total if keepdims else total.squeeze(axis)


def _leaves(nested: Any) -> Iterator[np.ndarray]:
    if isinstance(nested, list | tuple):
        for item in nested:
            yield from _leaves(item)
    else:
        yield nested


def _block_histograms(block: np.ndarray, n_keep: int, grid: bool) -> np.ndarray:
    kept_shape = block.shape[:n_keep]
    rows = block.reshape(int(np.prod(kept_shape, dtype=np.int64)), -1)
    function = grid_histogram if grid else uint16_histogram
    if len(rows) == 1:
        hist = function(rows[0])[None]  # (the usual case: one group per block) no copy
    else:
        hist = np.stack([function(row) for row in rows]) if len(rows) else np.zeros((0, 1))
    return hist.reshape(*kept_shape, *(1,) * (block.ndim - n_keep), hist.shape[-1])


def _percentiles_of(
    hist: np.ndarray, percentiles: tuple[float, ...], dtype_name: str, grid: bool
) -> np.ndarray:
    flat = hist.reshape(-1, hist.shape[-1])
    if grid and flat[:, -1].any():
        raise SentinelCubeError(
            f"{int(flat[:, -1].sum())} values are not reflectances on the 1e-4 grid (resampled "
            "or computed values?): pass method='radix' for exact percentiles of any float"
        )
    out = np.array(
        [
            [percentile_from_histogram(h, p, np.dtype(dtype_name), grid) for p in percentiles]
            for h in flat
        ],  # fmt: skip
        dtype=np.float64,
    )
    return out.reshape(*hist.shape[:-1], len(percentiles))


# ----------------------------------------------------------------------------- radix


def _float_keys(values: np.ndarray) -> np.ndarray:
    """Order-preserving unsigned keys of float32 / float64 values (NaN excluded by the caller)."""
    unsigned = np.uint32 if values.dtype == np.float32 else np.uint64
    bits: Any = values.view(unsigned)
    top = unsigned(1) << unsigned(8 * values.itemsize - 1)
    return np.where(bits & top, ~bits, bits | top)


def _key_to_float(key: int, dtype: np.dtype) -> np.floating:
    """The float32 / float64 value of a key of :func:`_float_keys`."""
    unsigned = np.uint32 if dtype == np.float32 else np.uint64
    bits = unsigned(key)
    top = unsigned(1) << unsigned(8 * dtype.itemsize - 1)
    bits = bits & ~top if bits & top else ~bits
    return np.array([bits], dtype=unsigned).view(dtype)[0]


def _radix_pass(
    block: np.ndarray, n_keep: int, digit: int, prefixes: np.ndarray | None
) -> np.ndarray:
    """Histograms of the 16-bit ``digit`` of the keys (0: the highest 16 bits).

    Without ``prefixes``: of all valid values of each group, shape ``(..., 1, bins)``.
    With ``prefixes`` (``(kept..., targets)``, the higher digits already chosen):
    for each target, of the values whose higher digits equal its prefix.
    """
    kept_shape = block.shape[:n_keep]
    rows = block.reshape(int(np.prod(kept_shape, dtype=np.int64)), -1)
    shift = 8 * block.dtype.itemsize - 16 * (digit + 1)
    out = []
    for i, row in enumerate(rows):
        keys = _float_keys(row[~np.isnan(row)])
        digits = ((keys >> shift) & 0xFFFF).astype(np.int64)
        if prefixes is None:
            out.append(np.bincount(digits, minlength=N_BINS)[None])
            continue
        high = keys >> (shift + 16)
        wanted = prefixes.reshape(len(rows), -1)[i]
        out.append(np.stack([np.bincount(digits[high == p], minlength=N_BINS) for p in wanted]))
    hist = np.stack(out).astype(np.int64)  # (rows, targets or 1, bins)
    return hist.reshape(*kept_shape, *(1,) * (block.ndim - n_keep), *hist.shape[1:])


def _radix_sum(data: da.Array, n_keep: int, digit: int, prefixes: np.ndarray | None) -> np.ndarray:
    """Run one radix pass over the whole array and sum the per-block histograms."""
    n_targets = 1 if prefixes is None else prefixes.shape[-1]
    block_chunks = [c if axis < n_keep else (1,) * len(c) for axis, c in enumerate(data.chunks)]
    per_block = da.map_blocks(
        _radix_pass,
        data,
        n_keep=n_keep,
        digit=digit,
        prefixes=prefixes,
        new_axis=[data.ndim, data.ndim + 1],
        chunks=(*block_chunks, (n_targets,), (N_BINS,)),
        dtype=np.int64,
    )
    reduced = tuple(range(n_keep, data.ndim))
    summed = per_block.sum(axis=reduced) if reduced else per_block
    return np.asarray(summed.compute()).reshape(-1, n_targets, N_BINS)


def _radix_percentiles(data: da.Array, n_keep: int, percentiles: tuple[float, ...]) -> np.ndarray:
    """Exact order statistics of float32 / float64 data, 16 bits of their keys per pass."""
    data = data.rechunk({axis: -1 for axis in range(n_keep)})  # blocks see every group
    dtype = np.dtype(data.dtype)
    kept_shape = data.shape[:n_keep]
    first = _radix_sum(data, n_keep, 0, None)[:, 0, :]  # (groups, bins)
    groups, n_p = first.shape[0], len(percentiles)
    counts = first.sum(axis=1)
    ranks = np.zeros((groups, 2 * n_p), dtype=np.int64)
    gammas = np.zeros((groups, n_p))
    for g in range(groups):
        last = max(int(counts[g]) - 1, 0)
        for j, p in enumerate(percentiles):
            virtual = last * (p / 100)  # numpy's linear virtual index
            lo = min(int(np.floor(virtual)), last)
            ranks[g, 2 * j : 2 * j + 2] = (lo, min(lo + 1, last))
            gammas[g, j] = virtual - lo
    # per (group, target): the key's digits chosen so far and the rank left within them
    prefixes = [[0] * (2 * n_p) for _ in range(groups)]
    remaining = ranks.tolist()
    hist = first[:, None, :].repeat(2 * n_p, axis=1)
    for digit in range(8 * dtype.itemsize // 16):
        if digit:
            wanted = np.array(prefixes, dtype=np.uint64).reshape(*kept_shape, 2 * n_p)
            hist = _radix_sum(data, n_keep, digit, wanted)
        for g in range(groups):
            for t in range(2 * n_p):
                cumulative = np.cumsum(hist[g, t])
                chosen = min(int(np.searchsorted(cumulative, remaining[g][t], "right")), N_BINS - 1)
                remaining[g][t] -= int(cumulative[chosen - 1]) if chosen > 0 else 0
                prefixes[g][t] = (prefixes[g][t] << 16) | chosen
    result = np.full((groups, n_p), np.nan)
    for g in range(groups):
        if counts[g] == 0:
            continue
        values = [_key_to_float(key, dtype) for key in prefixes[g]]
        for j in range(n_p):
            a, b, gamma = values[2 * j], values[2 * j + 1], float(gammas[g, j])
            lerp = b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma
            result[g, j] = float(lerp)
    return result.reshape(*kept_shape, n_p)
