"""Exact percentiles of a cube and the percentile stretch, lazily and in one pass."""

from __future__ import annotations

from collections.abc import Sequence
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

    - ``"histogram"`` (uint16): per-chunk ``bincount`` of the 65,536 values,
      summed in a tree reduction; lazy.
    - ``"grid"`` (float reflectance read from products, ``(DN + offset) / 1e4``):
      the same histogram over the 1e-4 grid; lazy. A value off the grid raises
      at compute time.
    - ``"radix"`` (any float32): exact radix selection on the order-preserving
      bit pattern in two passes (computes the data twice, eagerly).
    - ``"auto"``: ``histogram`` for integers, ``grid`` for reflectance cubes
      built by :func:`sentinel_cube.open_cube` (``sentinel_cube_units`` attr),
      ``radix`` otherwise.

    Returns
    -------
    xarray.DataArray
        Dims: the dims not reduced (e.g. ``band``) plus ``percentile``; NaN for
        groups with no valid value.
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
    method = _method(cube, method)
    keep = [d for d in cube.dims if d not in dims]
    ordered = cube.transpose(*keep, *dims)
    data = ordered.data if isinstance(ordered.data, da.Array) else da.from_array(ordered.data)
    n_keep = len(keep)
    if method == "radix":
        values = _radix_percentiles(data, n_keep, tuple(percentiles))
    else:
        hist = _histograms(data, n_keep, grid=(method == "grid"))
        values = da.map_blocks(
            _percentiles_of,
            hist,
            percentiles=tuple(percentiles),
            dtype_name=str(cube.dtype),
            grid=method == "grid",
            chunks=(*hist.chunks[:-1], (len(percentiles),)),
            dtype=np.float64,
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

    Returns
    -------
    xarray.DataArray
        Lazy; coords ``stretch_low``/``stretch_high`` hold the percentiles (lazy
        too: ``.stretch_low.values`` computes them). Where ``low == high`` the
        stretched value is 0.

    Examples
    --------
    >>> rgb = stretch(cube.sel(band=["B04", "B03", "B02"]), (2, 98))   # doctest: +SKIP
    >>> rgb.stretch_low.values, rgb.stretch_high.values                # doctest: +SKIP
    """
    if out not in ("uint8", "float"):
        raise SentinelCubeError(f"out={out!r}: use 'uint8' or 'float'")
    if len(percentiles) != 2 or percentiles[0] > percentiles[1]:
        raise SentinelCubeError(f"percentiles={percentiles!r} must be (low, high) with low <= high")
    bounds = cube_percentiles(cube, percentiles, dims, method)
    low = bounds.isel(percentile=0, drop=True)
    high = bounds.isel(percentile=1, drop=True)
    values = cube.astype(np.float64)
    if cube.dtype.kind in "iu":
        values = values.where(cube != 0)
    span = high - low
    scaled = ((values - low) / span.where(span > 0)).fillna(0).where(values.notnull())
    scaled = scaled.clip(0, 1)
    if out == "uint8":
        result = (scaled * 255).round().fillna(0).astype(np.uint8)  # round half to even, as rint
    else:
        result = scaled.astype(np.float32)
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


def _method(cube: xr.DataArray, method: str) -> str:
    if method not in METHODS:
        raise SentinelCubeError(f"method={method!r} is not one of {', '.join(METHODS)}")
    kind = cube.dtype.kind
    if method == "auto":
        if kind in "iu":
            return "histogram"
        return "grid" if cube.attrs.get("sentinel_cube_units") == "reflectance" else "radix"
    if method == "histogram" and cube.dtype != np.uint16:
        raise SentinelCubeError("method='histogram' needs a uint16 cube (units='dn')")
    if method in ("grid", "radix") and cube.dtype != np.float32:
        raise SentinelCubeError(f"method={method!r} needs a float32 cube")
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
    return per_block.sum(axis=reduced, dtype=np.int64) if reduced else per_block


def _block_histograms(block: np.ndarray, n_keep: int, grid: bool) -> np.ndarray:
    kept_shape = block.shape[:n_keep]
    rows = block.reshape(int(np.prod(kept_shape, dtype=np.int64)), -1)
    function = grid_histogram if grid else uint16_histogram
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
    """Order-preserving uint32 keys of float32 values (NaN excluded by the caller)."""
    bits = values.astype(np.float32).view(np.uint32)
    negative = (bits >> 31).astype(bool)
    return np.where(negative, ~bits, bits | np.uint32(0x80000000))


def _key_to_float(key: int) -> np.float32:
    bits = np.uint32(key)
    if bits & np.uint32(0x80000000):
        bits = bits & np.uint32(0x7FFFFFFF)
    else:
        bits = ~bits
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


def _radix_pass(block: np.ndarray, n_keep: int, targets: np.ndarray | None) -> np.ndarray:
    """High-16-bit histograms, or (with targets) low-16-bit histograms within target bins."""
    kept_shape = block.shape[:n_keep]
    rows = block.reshape(int(np.prod(kept_shape, dtype=np.int64)), -1)
    out = []
    for i, row in enumerate(rows):
        keys = _float_keys(row[~np.isnan(row)])
        if targets is None:
            out.append(np.bincount(keys >> 16, minlength=N_BINS)[None])
        else:
            wanted = targets.reshape(len(rows), -1)[i]
            out.append(
                np.stack(
                    [
                        np.bincount(keys[(keys >> 16) == h] & 0xFFFF, minlength=N_BINS)
                        for h in wanted
                    ]
                )  # fmt: skip
            )
    hist = np.stack(out).astype(np.int64)  # (rows, targets or 1, bins)
    return hist.reshape(*kept_shape, *(1,) * (block.ndim - n_keep), *hist.shape[1:])


def _radix_sum(data: da.Array, n_keep: int, targets: np.ndarray | None) -> np.ndarray:
    """Run one radix pass over the whole array and sum the per-block histograms."""
    n_targets = 1 if targets is None else targets.shape[-1]
    block_chunks = [c if axis < n_keep else (1,) * len(c) for axis, c in enumerate(data.chunks)]
    per_block = da.map_blocks(
        _radix_pass,
        data,
        n_keep=n_keep,
        targets=targets,
        new_axis=[data.ndim, data.ndim + 1],
        chunks=(*block_chunks, (n_targets,), (N_BINS,)),
        dtype=np.int64,
    )
    reduced = tuple(range(n_keep, data.ndim))
    summed = per_block.sum(axis=reduced) if reduced else per_block
    return np.asarray(summed.compute()).reshape(-1, n_targets, N_BINS)


def _radix_percentiles(data: da.Array, n_keep: int, percentiles: tuple[float, ...]) -> np.ndarray:
    """Exact order statistics of any float32 data: 16 high bits, then 16 low bits."""
    data = data.rechunk({axis: -1 for axis in range(n_keep)})  # blocks see every group
    kept_shape = data.shape[:n_keep]
    high = _radix_sum(data, n_keep, None)[:, 0, :]  # (groups, bins)
    groups, n_p = high.shape[0], len(percentiles)
    counts = high.sum(axis=1)
    cumulative = np.cumsum(high, axis=1)
    ranks = np.zeros((groups, 2 * n_p), dtype=np.int64)
    gammas = np.zeros((groups, n_p))
    for g in range(groups):
        last = max(int(counts[g]) - 1, 0)
        for j, p in enumerate(percentiles):
            virtual = last * (p / 100)  # numpy's linear virtual index
            lo = min(int(np.floor(virtual)), last)
            ranks[g, 2 * j : 2 * j + 2] = (lo, min(lo + 1, last))
            gammas[g, j] = virtual - lo
    target_bins = np.stack([np.searchsorted(cumulative[g], ranks[g], side="right")
                            for g in range(groups)])  # fmt: skip
    low = _radix_sum(data, n_keep, target_bins.reshape(*kept_shape, 2 * n_p))
    result = np.full((groups, n_p), np.nan)
    for g in range(groups):
        if counts[g] == 0:
            continue
        values = []
        for t in range(2 * n_p):
            high_bin = int(target_bins[g, t])
            before = int(cumulative[g][high_bin - 1]) if high_bin > 0 else 0
            low_bits = int(np.searchsorted(np.cumsum(low[g, t]), ranks[g, t] - before, "right"))
            values.append(_key_to_float((high_bin << 16) | low_bits))
        for j in range(n_p):
            a, b, gamma = values[2 * j], values[2 * j + 1], float(gammas[g, j])
            lerp = b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma
            result[g, j] = float(lerp)
    return result.reshape(*kept_shape, n_p)
