"""Command-line wrappers of the cube operations: clip, stretch, aggregate."""

from __future__ import annotations

import operator
import re
from pathlib import Path
from typing import Any

import click
import numpy as np
import xarray as xr

from ..exceptions import SentinelCubeError
from ._options import PathOrURL, parse_aoi

__all__ = ["aggregate_command", "clip_command", "parse_where", "stretch_command"]

_COMPARISONS = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CLAUSE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(.+?)\s*$")


def parse_where(expression: str, cube: xr.DataArray) -> xr.DataArray:
    """Evaluate ``"cloudcoverpercentage < 20 and tileid == 34TCT"`` on per-time coords.

    Clauses ``coordinate OP value`` joined by ``and`` (or ``&``); no code is
    evaluated, only these comparisons.
    """
    mask = xr.DataArray(np.ones(cube.sizes["time"], bool), dims="time")
    for clause in re.split(r"\s+and\s+|\s*&\s*", expression.strip()):
        match = _CLAUSE.match(clause)
        if not match:
            raise SentinelCubeError(
                f"--where clause {clause!r} is not 'coordinate OP value' (OP one of "
                f"{', '.join(_COMPARISONS)})"
            )
        name, op, raw = match.groups()
        if name not in cube.coords or cube[name].dims != ("time",):
            per_time = [str(c) for c in cube.coords if cube[c].dims == ("time",)]
            raise SentinelCubeError(
                f"--where: {name!r} is not a per-time coordinate; use one of {', '.join(per_time)}"
            )
        values = cube[name]
        value: Any = raw.strip("'\"")
        if values.dtype.kind in "iuf":
            value = float(raw)
        elif values.dtype.kind == "M":
            value = np.datetime64(raw)
        mask = mask & _COMPARISONS[op](values, value)
    return mask


@click.command("clip")
@click.argument("cube", type=PathOrURL(exists=True))
@click.option("--aoi", required=True, help="AOI file, WKT or 'minx,miny,maxx,maxy'.")
@click.option("--all-touched", is_flag=True, help="Keep every pixel the AOI touches.")
@click.option("--out", type=PathOrURL(), required=True, help="Zarr store (or s3:// URL).")
def clip_command(cube: Path | str, aoi: str, all_touched: bool, out: Path | str) -> None:
    """Clip a cube store to an AOI into a new store."""
    from ..ops import clip
    from ..store import open_zarr, to_zarr

    try:
        clipped = clip(open_zarr(cube), parse_aoi(aoi), all_touched=all_touched)
        report = to_zarr(clipped, out, mode="w")
    except (SentinelCubeError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"wrote {out}: {dict(clipped.sizes)}, {report.bytes_written / 1e6:.1f} MB")


@click.command("stretch")
@click.argument("cube", type=PathOrURL(exists=True))
@click.option("--bands", nargs=3, default=("B04", "B03", "B02"), show_default=True,
              help="Red, green and blue bands.")  # fmt: skip
@click.option("--time", "when", default=None, help="Day to show (nearest); default the first.")
@click.option("--percentiles", nargs=2, type=float, default=(2.0, 98.0), show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def stretch_command(cube: Path | str, bands, when, percentiles, out: Path) -> None:
    """Write a stretched true-colour PNG of one time step of a cube store."""
    from ..export import to_png
    from ..ops import stretch
    from ..store import open_zarr

    try:
        data = open_zarr(cube)
        frame = data.sel(time=np.datetime64(when), method="nearest") if when else data.isel(time=0)
        rgb = stretch(frame.sel(band=list(bands)).expand_dims("time"), tuple(percentiles))
        to_png(rgb.isel(time=0), out)
    except (SentinelCubeError, KeyError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    low, high = rgb.stretch_low.values, rgb.stretch_high.values
    click.echo(f"wrote {out} ({np.datetime_as_string(frame.time.values, unit='D')}; "
               f"stretch {np.round(low, 4).tolist()} .. {np.round(high, 4).tolist()})")  # fmt: skip


@click.command("aggregate")
@click.argument("cube", type=PathOrURL(exists=True))
@click.option("--freq", default=None, help="pandas offset: W, MS, QS, YS, 10D...")
@click.option("--groupby", default=None, help="time.month, time.season or a per-time coord.")
@click.option("--how", default="median", show_default=True,
              help="mean median min max std count sum first last quantile(q).")  # fmt: skip
@click.option("--where", "where", default=None, help='e.g. "cloudcoverpercentage < 20".')
@click.option("--mask", type=click.Choice(["scl"]), default=None, help="Mask clouds with SCL.")
@click.option("--out", type=PathOrURL(), required=True, help="Zarr store (or s3:// URL).")
def aggregate_command(cube: Path | str, freq, groupby, how, where, mask, out: Path | str) -> None:
    """Aggregate a cube store over time (calendar bins or metadata groups) into Zarr."""
    from ..ops import aggregate
    from ..store import open_zarr, to_zarr

    try:
        data = open_zarr(cube)
        selection = parse_where(where, data) if where else None
        result = aggregate(data, freq=freq, groupby=groupby, how=how, where=selection, mask=mask)
        if result.dims[0] == "time":
            to_zarr(result, out, mode="w")
        else:  # metadata groups (month, orbit...): a plain xarray Zarr store
            regular = {d: max(c) for d, c in zip(result.dims, result.chunks or (), strict=False)}
            from .._store_location import StoreLocation

            result.chunk(regular).to_dataset(name=str(data.name or "data")).to_zarr(
                StoreLocation(out).zarr_store(), mode="w", zarr_format=3, consolidated=False
            )
    except (SentinelCubeError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    dim = result.dims[0]
    click.echo(f"wrote {out}: {result.sizes[dim]} {dim} steps, scenes per step "
               f"{result.n_scenes.values.tolist()}")  # fmt: skip
