"""Metadata-indexed time aggregation of a cube, through flox."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from flox.xarray import xarray_reduce

from ..exceptions import SentinelCubeError
from ._mask import mask_clouds

__all__ = ["HOWS", "aggregate"]

#: Reductions offered by :func:`aggregate` and their flox names (skipna, no skipna).
HOWS: dict[str, tuple[str, str]] = {
    "mean": ("nanmean", "mean"),
    "median": ("nanmedian", "median"),
    "min": ("nanmin", "min"),
    "max": ("nanmax", "max"),
    "std": ("nanstd", "std"),
    "count": ("count", "count"),
    "sum": ("nansum", "sum"),
    "first": ("nanfirst", "first"),
    "last": ("nanlast", "last"),
    "quantile": ("nanquantile", "quantile"),
}
#: Reductions that need each group in one chunk along time (flox "blockwise").
_BLOCKWISE = {"median", "quantile"}
_QUANTILE_RE = re.compile(r"^quantile\(\s*([0-9.]+)\s*\)$")


def aggregate(
    cube: xr.DataArray,
    freq: str | None = None,
    groupby: str | None = None,
    how: str = "median",
    where: Any = None,
    weights: Any = None,
    mask: Any = None,
    skipna: bool = True,
    q: float | None = None,
) -> xr.DataArray:
    """Reduce a cube over time in calendar bins or metadata groups, lazily.

    Parameters
    ----------
    cube
        A ``(time, band, y, x)`` cube.
    freq
        A pandas offset (``"W"``, ``"MS"``, ``"QS"``, ``"YS"``, ``"10D"``...): bins
        and labels as ``cube.resample(time=freq)`` makes them, over the cube's
        whole time range (empty bins included).
    groupby
        Instead of ``freq``: ``"time.month"``, ``"time.season"``... or any
        per-time coordinate (``"relativeorbitnumber"``, ``"tileid"``, ...).
        Neither: reduce over all time steps.
    how
        ``mean``, ``median``, ``min``, ``max``, ``std``, ``count``, ``sum``,
        ``first``, ``last`` or ``quantile`` (with ``q=``, or ``"quantile(0.9)"``).
    where
        Boolean over ``time`` built from the metadata coordinates, e.g.
        ``cube.cloudcoverpercentage < 20``: only those scenes enter the bins (the
        others are never read).
    weights
        Per-time weights for ``how="mean"`` (e.g. ``1 - cube.cloudcoverpercentage
        / 100``): ``sum(w * x) / sum(w)`` over the valid pixels of each bin.
    mask
        ``"scl"`` (:func:`sentinel_cube.mask_clouds` with its default classes) or
        a boolean DataArray, True where a pixel is to be left out.
    skipna
        Ignore no data (NaN) in the reductions.

    Returns
    -------
    xarray.DataArray
        Lazy, float32 (DN cubes are reduced as floats with 0 as no data), time
        labelled by bin (or dims named after ``groupby``); ``n_scenes`` counts the
        scenes that entered each bin. Empty bins are NaN (``count``: 0). Equal to
        xarray's own ``resample``/``groupby`` reduction of the computed array
        (``sum`` with ``min_count=1``).

    Examples
    --------
    With ``cube`` from :func:`sentinel_cube.open_cube` (4 dates, June to August):

    >>> monthly = sc.aggregate(cube, freq="MS", how="median",
    ...                        where=cube.cloudcoverpercentage < 20)
    >>> monthly.time.dt.month.values, monthly.n_scenes.values
    (array([6, 7, 8]), array([1, 1, 1]))
    >>> june = cube.isel(time=0).values  # the only clear June scene
    >>> np.array_equal(monthly.isel(time=0).values, june, equal_nan=True)
    True

    Cloud masks of Level-2A products need their SCL band or files:

    >>> monthly = sc.aggregate(cube, freq="MS", how="median",
    ...                        where=cube.cloudcoverpercentage < 20, mask="scl")  # doctest: +SKIP
    """
    how, q = _parse_how(how, q)
    if freq is not None and groupby is not None:
        raise SentinelCubeError("give freq or groupby, not both")
    if weights is not None and how != "mean":
        raise SentinelCubeError(f"weights apply to how='mean' only, not {how!r}")
    if "time" not in cube.dims:
        raise SentinelCubeError(f"the cube has no time dimension (dims {cube.dims})")

    data = _as_float(cube)
    if isinstance(mask, str):
        if mask != "scl":
            raise SentinelCubeError(f"mask={mask!r}: use 'scl' or a boolean DataArray")
        data = _as_float(mask_clouds(cube))
    elif mask is not None:
        data = data.where(~mask.astype(bool))

    keys, expected, name = _group_keys(cube, freq, groupby)
    selected = _selection(cube, where)
    data = data.isel(time=selected)
    by = xr.DataArray(keys[selected], dims="time", name=name)
    n_scenes = (
        pd.Series(1, index=pd.Index(keys[selected])).groupby(level=0).size()
        .reindex(expected, fill_value=0)
    )  # fmt: skip

    if how in _BLOCKWISE:  # each group contiguous and in one chunk along time
        order = np.argsort(by.values, kind="stable")
        data, by = data.isel(time=order), by.isel(time=order)
        sizes = pd.Series(by.values).value_counts(sort=False).reindex(pd.unique(by.values))
        data = data.chunk({"time": tuple(int(s) for s in sizes)}) if data.sizes["time"] else data

    if weights is not None:
        result = _weighted_mean(data, by, expected, _time_values(cube, weights)[selected])
    else:
        func = HOWS[how][0 if skipna else 1]
        kwargs: dict[str, Any] = {}
        if how == "quantile":
            kwargs["q"] = q
        if how == "sum":
            kwargs["min_count"] = 1
        if how in _BLOCKWISE:
            kwargs["method"] = "blockwise"
        result = xarray_reduce(
            data, by, func=func, expected_groups=expected, fill_value=np.nan,
            keep_attrs=True, **kwargs,
        )  # fmt: skip
        if how == "count":
            result = result.fillna(0)
        if how == "quantile" and "quantile" in result.coords:
            result = result.drop_vars("quantile")
    result = result.rename({name: "time"}) if name != "time" and freq is not None else result
    dim = "time" if freq is not None else name
    result = result.transpose(dim, *[d for d in cube.dims if d != "time"])
    result = result.assign_coords(n_scenes=(dim, n_scenes.to_numpy().astype(np.int64)))
    if cube.rio.crs is not None:
        result = result.rio.write_crs(cube.rio.crs)
    result = result.astype(np.float32) if how != "count" else result.astype(np.int64)
    result.attrs = _attrs(cube.attrs, how if how != "quantile" else f"quantile({q})")
    return result


def _attrs(attrs: dict[str, Any], aggregation: str) -> dict[str, Any]:
    """The cube's attributes that still hold for its aggregate.

    ``sentinel_cube_units`` goes: it says the values are as read from the products
    (uint16 DN, or reflectances on the 1e-4 grid), which means, medians and standard
    deviations are not (:func:`sentinel_cube.stretch` would pick a method for them).
    No data becomes NaN (DN cubes are reduced as floats); counts have no unit.
    """
    kept = {k: v for k, v in attrs.items() if k not in ("sentinel_cube_units", "_FillValue")}
    if aggregation == "count":
        kept.pop("scale_factor_note", None)
        kept["units"] = "1"
    else:
        kept["_FillValue"] = np.float32(np.nan)
    kept["aggregation"] = aggregation
    return kept


def _parse_how(how: str, q: float | None) -> tuple[str, float | None]:
    match = _QUANTILE_RE.match(str(how))
    if match:
        how, q = "quantile", float(match.group(1))
    if how not in HOWS:
        raise SentinelCubeError(f"how={how!r} is not one of {', '.join(HOWS)} or 'quantile(q)'")
    if how == "quantile":
        if q is None or not 0 <= q <= 1:
            raise SentinelCubeError("how='quantile' needs q in [0, 1] (q=0.9 or 'quantile(0.9)')")
    return how, q


def _as_float(cube: xr.DataArray) -> xr.DataArray:
    if cube.dtype.kind in "iu":
        return cube.where(cube != 0).astype(np.float32)
    return cube


def _time_values(cube: xr.DataArray, value: Any) -> np.ndarray:
    array = np.asarray(value.values if isinstance(value, xr.DataArray) else value)
    if array.shape != (cube.sizes["time"],):
        raise SentinelCubeError(
            f"expected one value per time step ({cube.sizes['time']}), got shape {array.shape}"
        )
    return array


def _selection(cube: xr.DataArray, where: Any) -> np.ndarray:
    if where is None:
        return np.arange(cube.sizes["time"])
    keep = _time_values(cube, where).astype(bool)
    return np.flatnonzero(keep)


def _group_keys(cube: xr.DataArray, freq: str | None, groupby: str | None):
    """Group key of every time step and the full, sorted list of groups."""
    times = pd.DatetimeIndex(cube.time.values)
    if freq is not None:
        try:
            resampler = pd.Series(np.arange(len(times)), index=times).resample(freq)
        except ValueError as error:
            raise SentinelCubeError(f"freq={freq!r} is not a pandas offset: {error}") from error
        keys = np.empty(len(times), dtype="datetime64[ns]")
        for label, indices in resampler.indices.items():
            keys[indices] = np.datetime64(label, "ns")
        expected = pd.DatetimeIndex(resampler.size().index)
        return keys, expected, "time"
    if groupby is not None:
        try:
            values = cube[groupby].values
        except KeyError as error:
            raise SentinelCubeError(
                f"groupby={groupby!r} is not a time component or a coordinate of the cube "
                f"(coordinates: {', '.join(map(str, cube.coords))})"
            ) from error
        if values.shape != (len(times),):
            raise SentinelCubeError(f"groupby={groupby!r} must have one value per time step")
        return values, pd.Index(np.unique(values)), groupby.replace("time.", "")
    return np.zeros(len(times), dtype=np.int64), pd.Index([0]), "group"


def _weighted_mean(
    data: xr.DataArray, by: xr.DataArray, expected: pd.Index, weights: np.ndarray
) -> xr.DataArray:
    """``sum(w * x) / sum(w)`` per group over the valid pixels, with two flox sums."""
    w = xr.DataArray(weights.astype(np.float64), dims="time")
    options: dict[str, Any] = {"expected_groups": expected, "fill_value": np.nan, "min_count": 1}
    numerator = xarray_reduce(data * w, by, func="nansum", **options)
    denominator = xarray_reduce(w.where(data.notnull()), by, func="nansum", **options)
    return numerator / denominator
