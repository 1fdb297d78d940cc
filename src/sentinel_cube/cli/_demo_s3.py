"""``sentinel-cube demo --s3``: the cube stage again, against a loopback S3 server.

The demo's downloaded products are uploaded to moto's S3 on the loopback
(:class:`sentinel_cube.testing.S3Server`), the cube is opened from their ``s3://`` URLs
(read in place: metadata by ranged GETs, pixels through GDAL's ``/vsis3/``), written to
a Zarr store on the same server, reopened with :func:`~sentinel_cube.open_zarr` and
compared with the local store value for value; a second :func:`~sentinel_cube.to_zarr`
writes nothing. The server's keys are fixed demo values and never printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ..cube import open_cube
from ..exceptions import SentinelCubeError
from ..store import WriteReport, open_zarr, to_zarr

if TYPE_CHECKING:
    from ..testing import S3Server, Traffic

__all__ = ["DEMO_BUCKET", "PRODUCTS_PREFIX", "run_s3_stage"]

#: The loopback server's bucket: the products under :data:`PRODUCTS_PREFIX`, then the store.
DEMO_BUCKET = "eodata-demo"

#: Where the products go in the bucket (as ``PREFIX/NAME.SAFE`` folders).
PRODUCTS_PREFIX = "Sentinel-2/MSI/L2A"

Echo = Callable[[str], None]


def run_s3_stage(
    server: S3Server,
    products: Sequence[Path],
    local_store: Path,
    cube_args: Mapping[str, Any],
    echo: Echo = print,
) -> str:
    """Upload ``products``, build the cube from S3 into a store on S3, check it, rerun.

    Parameters
    ----------
    server
        A loopback S3 server, not started: it runs for this stage only.
    products
        Local products (``.SAFE`` folders or ``.zip``) of the local cube.
    local_store
        The local store written from ``products`` with ``cube_args``; the store on S3
        must hold the same values.
    cube_args
        Keyword arguments of :func:`~sentinel_cube.open_cube` (bands, resolution, aoi).
    echo
        Where progress lines go.

    Returns
    -------
    str
        The ``s3://`` URL of the store (gone once the server stops).

    Raises
    ------
    SentinelCubeError
        When the store on S3 differs from the local store, or a rerun writes a step.
    """
    started = time.perf_counter()
    store = f"s3://{DEMO_BUCKET}/{local_store.name}"
    with server:
        options = server.storage_options()
        echo(f"11. the cube stage against a loopback S3 server (moto) at {server.endpoint_url}")
        server.create_bucket(DEMO_BUCKET)
        urls = _upload(server, products, echo)
        cube = _open(server, urls, cube_args, options, echo)
        report, traffic = _write(server, cube, store, options, mode="w")
        objects = len(server.keys(DEMO_BUCKET, f"{local_store.name}/"))
        echo(f"    wrote the cube to {report.store}: {len(report.written)} time steps, "
             f"{report.bytes_written / 1e6:.2f} MB in {report.seconds:.1f} s "
             f"({report.mpix_per_s:.1f} MPix/s), {objects} objects ({traffic})")  # fmt: skip
        _compare(store, local_store, options, echo)
        _rerun(server, cube, store, options, echo)
    echo(f"    S3 stage done in {time.perf_counter() - started:.1f} s; the server and its "
         f"bucket {DEMO_BUCKET!r} are gone with it")  # fmt: skip
    return store


def _upload(server: S3Server, products: Sequence[Path], echo: Echo) -> list[str]:
    """Upload the products under :data:`PRODUCTS_PREFIX`; return their URLs."""
    step = time.perf_counter()
    urls = [server.upload(path, PRODUCTS_PREFIX, DEMO_BUCKET) for path in products]
    objects = len(server.keys(DEMO_BUCKET, f"{PRODUCTS_PREFIX}/"))
    size = sum(_size(path) for path in products)
    echo(f"    uploaded the {len(urls)} downloaded products: {objects} objects, "
         f"{size / 1e6:.1f} MB in {time.perf_counter() - step:.1f} s, at")  # fmt: skip
    for url in urls:
        echo(f"      {url}")
    return urls


def _size(path: Path) -> int:
    """Bytes of a file, or of the files in a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _open(
    server: S3Server,
    urls: list[str],
    cube_args: Mapping[str, Any],
    options: dict[str, str],
    echo: Echo,
) -> xr.DataArray:
    """The lazy cube of the products read in place from their URLs."""
    step, before = time.perf_counter(), server.traffic
    cube = open_cube(urls, storage_options=options, **cube_args)
    echo(
        f"    lazy cube read in place from those s3:// URLs (no download): "
        f"{cube.sizes['time']} time steps x {cube.sizes['band']} bands x {cube.sizes['y']} x "
        f"{cube.sizes['x']} px, {cube.data.npartitions} chunks (planned in "
        f"{time.perf_counter() - step:.2f} s; {_traffic(server.traffic - before)})"
    )
    return cube


def _write(
    server: S3Server, cube: xr.DataArray, store: str, options: dict[str, str], mode: str
) -> tuple[WriteReport, str]:
    """Write the cube to the store on S3; its report and the S3 traffic it took."""
    before = server.traffic
    report = to_zarr(cube, store, mode=mode, progress=False, storage_options=options)
    return report, _traffic(server.traffic - before)


def _compare(store: str, local_store: Path, options: dict[str, str], echo: Echo) -> None:
    """Reopen the store on S3 and check it holds the local store's values."""
    remote = open_zarr(store, storage_options=options)
    local = open_zarr(local_store)
    problem = _difference(remote, local)
    if problem is not None:
        raise SentinelCubeError(f"the store {store} differs from {local_store}: {problem}")
    echo(f"    reopened it with open_zarr: {remote.sizes['time']} time steps, equal to the "
         f"local store {local_store} value for value (NaNs included)")  # fmt: skip


def _difference(remote: xr.DataArray, local: xr.DataArray) -> str | None:
    """How two cubes differ in shape, coordinates or values; None when they do not."""
    if remote.shape != local.shape:
        return f"shape {remote.shape} instead of {local.shape}"
    for name in ("time", "band", "y", "x"):
        if not np.array_equal(remote[name].values, local[name].values):
            return f"other {name} coordinates"
    a, b = remote.values, local.values
    same = a == b
    if a.dtype.kind == "f":
        same |= np.isnan(a) & np.isnan(b)
    if a.dtype != b.dtype or not same.all():
        return f"{int((~same).sum())} of {same.size} values differ ({a.dtype} vs {b.dtype})"
    return None


def _rerun(
    server: S3Server, cube: xr.DataArray, store: str, options: dict[str, str], echo: Echo
) -> None:
    """Write the same cube again: every step is committed already, nothing is written."""
    report, traffic = _write(server, cube, store, options, mode="a")
    echo(f"    ran to_zarr again: {len(report.written)} time steps written, "
         f"{len(report.skipped)} skipped as committed, {report.bytes_written / 1e6:.2f} MB "
         f"in {report.seconds:.1f} s ({traffic})")  # fmt: skip
    if report.written:
        raise SentinelCubeError(f"a rerun into {store} wrote {len(report.written)} steps again")


def _traffic(traffic: Traffic) -> str:
    """``N requests, X MB down, Y MB up`` (as the client sees them)."""
    return (
        f"{traffic.requests} S3 requests, {traffic.sent / 1e6:.2f} MB down, "
        f"{traffic.received / 1e6:.2f} MB up"
    )
