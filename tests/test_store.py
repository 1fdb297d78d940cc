"""Zarr stores: exact round trip, idempotent append, resume after kill -9, any scheduler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

from sentinel_cube import SentinelCubeError
from sentinel_cube.cube import open_cube
from sentinel_cube.store import open_zarr, to_zarr
from sentinel_cube.testing import BUDAPEST_TILES, default_specs, make_archive

DATES = ("2023-06-06", "2023-06-16", "2023-06-26", "2023-07-06")
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("store-archive")
    specs = default_specs(tiles=BUDAPEST_TILES, dates=DATES)
    return make_archive(root, specs, scale=30, bands=["B04", "B08"])


def _cube(paths, **kwargs):
    return open_cube(paths, bands=["B04", "B08"], resolution=300, chunks=128, **kwargs)


def _assert_same(a: xr.DataArray, b: xr.DataArray) -> None:
    assert a.dims == b.dims and a.dtype == b.dtype
    np.testing.assert_array_equal(a.values, b.values)  # NaN == NaN here
    for name in a.coords:
        if name == "spatial_ref":
            continue
        np.testing.assert_array_equal(np.asarray(a[name].values), np.asarray(b[name].values))


def test_round_trip_is_exact(archive, tmp_path):
    cube = _cube(archive)
    report = to_zarr(cube, tmp_path / "c.zarr", progress=False)
    assert len(report.written) == len(DATES) and report.bytes_written > 0
    back = open_zarr(tmp_path / "c.zarr")
    _assert_same(back.compute(), cube.compute())
    assert back.rio.crs == cube.rio.crs
    assert back.rio.transform() == cube.rio.transform()
    meta = json.loads((tmp_path / "c.zarr" / "reflectance" / "zarr.json").read_text())
    assert meta["zarr_format"] == 3
    blosc = [c["configuration"] for c in meta["codecs"] if c["name"] == "blosc"]
    assert [(b["cname"], b["clevel"], b["shuffle"]) for b in blosc] == [("lz4", 5, "bitshuffle")]
    dn = _cube(archive, units="dn")
    to_zarr(dn, tmp_path / "dn.zarr", progress=False, codec="zstd")
    _assert_same(open_zarr(tmp_path / "dn.zarr").compute(), dn.compute())
    meta = json.loads((tmp_path / "dn.zarr" / "dn" / "zarr.json").read_text())
    blosc = [c["configuration"] for c in meta["codecs"] if c["name"] == "blosc"]
    assert [(b["cname"], b["clevel"], b["shuffle"]) for b in blosc] == [("zstd", 1, "bitshuffle")]


def test_second_run_writes_nothing(archive, tmp_path):
    store = tmp_path / "c.zarr"
    to_zarr(_cube(archive), store, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}
    again = to_zarr(_cube(archive), store, progress=False)
    assert again.written == () and len(again.skipped) == len(DATES)
    assert again.bytes_written == 0
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()} == stamps


def test_append_only_new_steps_and_keep_time_order(archive, tmp_path):
    store = tmp_path / "c.zarr"
    by_date = {d: [p for p in archive if d.replace("-", "") in p.name] for d in DATES}
    later = [p for d in DATES[2:] for p in by_date[d]]
    earlier = [p for d in DATES[:2] for p in by_date[d]]
    full = _cube(archive)
    # the full cube's grid, so partial cubes share it
    bounds = (*full.rio.bounds(),)
    first = to_zarr(_cube(later, bounds=bounds), store, progress=False)
    assert len(first.written) == 2
    second = to_zarr(_cube(earlier + later, bounds=bounds), store, progress=False)
    assert len(second.written) == 2 and len(second.skipped) == 2
    back = open_zarr(store)
    assert list(back.time.values) == sorted(back.time.values)
    _assert_same(back.compute(), full.compute())


def test_incompatible_append_is_refused(archive, tmp_path):
    store = tmp_path / "c.zarr"
    to_zarr(_cube(archive), store, progress=False)
    other = open_cube(archive, bands=["B08"], resolution=300, chunks=128)
    with pytest.raises(SentinelCubeError, match="bands"):
        to_zarr(other, store, progress=False)
    with pytest.raises(SentinelCubeError, match="holds 'reflectance'"):
        to_zarr(_cube(archive, units="dn"), store, progress=False)
    with pytest.raises(SentinelCubeError, match="exists"):
        to_zarr(_cube(archive), store, mode="w-", progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    with pytest.raises(SentinelCubeError, match="not a Zarr store"):
        to_zarr(_cube(archive), tmp_path / "junk", progress=False)


_INGEST = textwrap.dedent(
    """
    import sys, time
    from sentinel_cube.cube import open_cube
    from sentinel_cube.store import to_zarr
    from sentinel_cube import _read

    paths, store = sys.argv[1].split(","), sys.argv[2]
    slow = float(sys.argv[3])
    original = _read.read_source

    def slow_read(*args, **kwargs):  # stretch the ingest so it can be killed midway
        time.sleep(slow)
        return original(*args, **kwargs)

    _read.read_source = slow_read
    import sentinel_cube._graph as graph
    graph.read_source = slow_read
    cube = open_cube(paths, bands=["B04", "B08"], resolution=300, chunks=128)
    shift = int(sys.argv[4])  # pixels: a cube whose chunks are off the store's grid
    if shift:
        left, bottom, right, top = cube.rio.bounds()
        cube = open_cube(paths, bands=["B04", "B08"], resolution=300, chunks=128,
                         bounds=(left + shift * 300, bottom, right, top - 2 * shift * 300))
        assert cube.data.chunks[2][0] != 128 and cube.data.chunks[3][0] != 128
    import dask
    with dask.config.set(scheduler="threads"):
        to_zarr(cube, store, progress=False)
    """
)


def _run_ingest(paths, store, slow=0.0, shift=0):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    args = [sys.executable, "-c", _INGEST, ",".join(map(str, paths)), str(store), str(slow),
            str(shift)]  # fmt: skip
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _committed(store: Path) -> list[int]:
    meta = store / "_sentinel_cube" / "zarr.json"
    if not meta.exists():
        return []
    return [slot for slot, _ in json.loads(meta.read_text())["attributes"].get("steps", [])]


@pytest.mark.parametrize("shift", [0, 3])  # 3: chunks off the store's grid, read onto it
def test_killed_ingest_leaves_complete_steps_and_resumes_bit_for_bit(archive, tmp_path, shift):
    reference = tmp_path / "reference.zarr"
    assert _run_ingest(archive, reference, shift=shift).wait(timeout=120) == 0
    store = tmp_path / "killed.zarr"
    process = _run_ingest(archive, store, slow=0.05, shift=shift)
    deadline = time.monotonic() + 120
    while len(_committed(store)) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    done = _committed(store)
    assert 1 <= len(done) < len(DATES), "the kill should land mid-ingest"
    partial = open_zarr(store).compute()
    expected = open_zarr(reference).compute()
    assert partial.sizes["time"] == len(done)
    _assert_same(partial, expected.sel(time=partial.time))
    # the rerun completes the store; the result equals the uninterrupted ingest
    assert _run_ingest(archive, store, shift=shift).wait(timeout=120) == 0
    _assert_same(open_zarr(store).compute(), expected)
    for name in ("reflectance",):
        a = sorted((reference / name).rglob("c/*/*/*/*"))
        b = sorted((store / name).rglob("c/*/*/*/*"))
        assert [p.relative_to(reference) for p in a] == [p.relative_to(store) for p in b]
        assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))


def test_process_cluster_store_is_bit_identical_to_threads(archive, tmp_path):
    distributed = pytest.importorskip("distributed")
    threaded = tmp_path / "threads.zarr"
    to_zarr(_cube(archive), threaded, progress=False)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        to_zarr(_cube(archive), tmp_path / "procs.zarr", progress=False)
    a = sorted(p for p in threaded.rglob("*") if p.is_file() and "c" in p.parts)
    b = sorted(p for p in (tmp_path / "procs.zarr").rglob("*") if p.is_file() and "c" in p.parts)
    assert len(a) == len(b) > 0
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))


def _peak_rss() -> int:
    """This process's resident-set high-water mark, in bytes.

    ``VmHWM`` and not ``getrusage().ru_maxrss``: a spawned worker's ``ru_maxrss``
    carries over the high-water mark of the process it was forked from before its
    ``exec`` (here the whole pytest run), so it would measure the test session.
    """
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("peak memory is read from /proc (Linux)")
    line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


@pytest.mark.slow
def test_cube_larger_than_worker_memory_streams_to_zarr(archive, tmp_path):
    distributed = pytest.importorskip("distributed")
    paths = [p for p in archive if "_T34TCT_" in p.name][:3]
    # 300 m pixels upsampled to 10 m: one tile is 10980 x 10980 px, 482 MB per band and step
    cube = open_cube(paths, bands=["B04"], resolution=10)
    nbytes = cube.nbytes
    limit = 450 * 2**20
    assert nbytes > 3 * limit
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, memory_limit=limit,
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        worker = next(iter(client.scheduler_info()["workers"]))
        report = to_zarr(cube, tmp_path / "big.zarr", progress=False, codec="lz4")
        peak = client.run(_peak_rss)[worker]
        assert list(client.scheduler_info()["workers"]) == [worker]  # never restarted
    assert len(report.written) == 3
    # the worker survived (checked above) and stayed under its memory limit, a third
    # of the cube's size (alone it peaks near 360 MiB, interpreter and libraries included)
    assert peak < limit, f"worker peaked at {peak / 2**20:.0f} MiB"
    back = open_zarr(tmp_path / "big.zarr")
    window = {"y": slice(5000, 5100), "x": slice(7000, 7100)}
    np.testing.assert_array_equal(back.isel(**window).values, cube.isel(**window).values)


# ----------------------------------------------------------------------------- defects


#: Real revisit times of one tile: other orbits and platforms pass at other times of day.
TIMES_OF_DAY = ("09:45:49.024", "10:06:52.026", "09:56:01.100", "16:17:03.000", "09:45:51.024")


@pytest.fixture(scope="module")
def revisits(tmp_path_factory):
    """One tile on five days, each sensed at another time of day."""
    from sentinel_cube.testing import ProductSpec

    root = tmp_path_factory.mktemp("revisits")
    specs = [
        ProductSpec("34TCT", f"2023-07-{10 + i:02d}T{clock}+00:00", platform="S2A")
        for i, clock in enumerate(TIMES_OF_DAY)
    ]
    return make_archive(root, specs, scale=30, bands=["B04"])


@pytest.mark.parametrize("first", [1, 3])
def test_appending_acquisitions_at_other_times_of_day(revisits, tmp_path, first):
    def cube(paths):
        return open_cube(paths, bands=["B04"], resolution=300, chunks=128)

    store = tmp_path / "c.zarr"
    to_zarr(cube(revisits[:first]), store, progress=False)
    for path in revisits[first:]:  # one acquisition per append, as a daily job does
        to_zarr(cube([path]), store, progress=False)
    back = open_zarr(store)
    expected = [
        np.datetime64(f"2023-07-{10 + i:02d}T{c}", "ns") for i, c in enumerate(TIMES_OF_DAY)
    ]
    assert list(back.time.values) == expected  # exact to the millisecond, in time order
    _assert_same(back.compute(), cube(revisits).compute())
    # the encoding is fixed and explicit, whatever the first write held
    meta = json.loads((store / "time" / "zarr.json").read_text())
    assert meta["attributes"]["units"] == "nanoseconds since 1970-01-01"
    assert meta["data_type"] == "int64"
    # and a plain xarray reader decodes the same times
    plain = xr.open_zarr(store, consolidated=False)
    assert sorted(plain.time.values) == expected


def test_grids_must_match_exactly(revisits, tmp_path):
    store = tmp_path / "c.zarr"
    cube = open_cube(revisits[:2], bands=["B04"], resolution=10, chunks=256,
                     bounds=(300000, 5290000, 302560, 5292560))  # fmt: skip
    to_zarr(cube, store, progress=False)
    stamps = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in store.rglob("*") if p.is_file()}
    # one 10 m pixel north, on northings of 5.29e6 m (np.allclose would accept 50 m)
    shifted = cube.isel(time=[0]).assign_coords(y=cube.y + 10.0, time=[np.datetime64("2024-01-01")])
    with pytest.raises(SentinelCubeError) as error:
        to_zarr(shifted, store, progress=False)
    message = str(error.value)
    assert "store grid [EPSG:32634, origin (300000.0, 5292560.0)" in message
    assert "cube grid [EPSG:32634, origin (300000.0, 5292570.0)" in message
    other_crs = cube.isel(time=[0]).rio.write_crs("EPSG:32633")
    with pytest.raises(SentinelCubeError, match="EPSG:32633"):
        to_zarr(other_crs.assign_coords(time=[np.datetime64("2024-01-01")]), store, progress=False)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in store.rglob("*") if p.is_file()}
    assert after == stamps  # nothing written, not even a lock


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_sharded_store_is_exact_with_concurrent_writers(archive, tmp_path, scheduler):
    import contextlib

    import dask

    cube = open_cube(archive, bands=["B04", "B08"], resolution=300, chunks=64)
    assert cube.sizes["y"] > 256 and cube.sizes["x"] > 512  # several shards, edge shards too
    store = tmp_path / "sharded.zarr"
    if scheduler == "threads":
        context: contextlib.AbstractContextManager = dask.config.set(
            scheduler="threads", num_workers=4
        )
    else:  # process workers of a local cluster, two threads each
        distributed = pytest.importorskip("distributed")
        context = distributed.Client(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        )
    with context:
        to_zarr(cube, store, shards=256, progress=False)
    meta = json.loads((store / "reflectance" / "zarr.json").read_text())
    codec = meta["codecs"][0]
    assert codec["name"] == "sharding_indexed"
    assert codec["configuration"]["chunk_shape"] == [1, 1, 64, 64]
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [1, 1, 256, 256]
    _assert_same(open_zarr(store).compute(), cube.compute())
    with pytest.raises(SentinelCubeError, match="multiple of the chunks"):
        to_zarr(cube, tmp_path / "bad.zarr", shards=100, progress=False)
    assert not (tmp_path / "bad.zarr").exists()


def _fewest_sides(length: int, side: int) -> tuple[int, int]:
    """(chunks, side): the fewest chunks of at most ``side`` covering ``length``, and the
    smallest side giving that many, found by trying every side (not by division)."""
    count = next(k for k in range(1, length + 1) if k * side >= length)
    return count, next(s for s in range(1, side + 1) if count * s >= length)


@pytest.mark.parametrize("chunks", [128, (96, 200), 1000])
def test_stored_chunks_even_out_the_cube_chunks_over_the_grid(archive, tmp_path, chunks):
    """A grid of 366 x 700 px in chunks of 128 px is stored in 3 x 6 chunks (as many as
    128 px chunks need) of 122 x 117 px: the edge chunks, which Zarr pads to full size
    and compresses whole, are not mostly padding. Pixels are the cube's."""
    cube = open_cube(archive, bands=["B04", "B08"], resolution=300, chunks=chunks)
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    side_y, side_x = (chunks, chunks) if isinstance(chunks, int) else chunks
    (count_y, cy), (count_x, cx) = _fewest_sides(ny, side_y), _fewest_sides(nx, side_x)
    assert cy * count_y - ny < count_y and cx * count_x - nx < count_x  # < 1 px per chunk
    store = tmp_path / "c.zarr"
    to_zarr(cube, store, progress=False)
    meta = json.loads((store / "reflectance" / "zarr.json").read_text())
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [1, 1, cy, cx]
    chunk_dir = store / "reflectance" / "c"
    files = {p.relative_to(chunk_dir) for p in chunk_dir.rglob("*") if p.is_file()}
    assert files <= {Path(f"{t}/{b}/{i}/{j}") for t in range(len(DATES)) for b in range(2)
                     for i in range(count_y) for j in range(count_x)}  # fmt: skip
    back = open_zarr(store)
    assert back.chunks[2] == (cy,) * (count_y - 1) + (ny - cy * (count_y - 1),)
    _assert_same(back.compute(), cube.compute())


def test_stored_chunks_as_asked(archive, tmp_path):
    """``chunks=`` sets the stored chunks of a new store, whose appends keep them; with
    ``shards`` and no ``chunks`` they are the cube's chunk side (a shard holds whole
    chunks); bad values name the argument."""
    cube = _cube(archive)
    to_zarr(cube.isel(time=[0, 1]), tmp_path / "a.zarr", chunks=(100, 50), progress=False)
    to_zarr(cube, tmp_path / "a.zarr", progress=False)  # an append keeps the store's chunks
    meta = json.loads((tmp_path / "a.zarr" / "reflectance" / "zarr.json").read_text())
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [1, 1, 100, 50]
    _assert_same(open_zarr(tmp_path / "a.zarr").compute(), cube.compute())
    to_zarr(cube, tmp_path / "s.zarr", shards=256, progress=False)
    meta = json.loads((tmp_path / "s.zarr" / "reflectance" / "zarr.json").read_text())
    assert meta["codecs"][0]["configuration"]["chunk_shape"] == [1, 1, 128, 128]
    for bad in (0, (10, -1), (1, 2, 3), "big", True):
        with pytest.raises(SentinelCubeError, match="chunks="):
            to_zarr(cube, tmp_path / "bad.zarr", chunks=bad, progress=False)  # type: ignore[arg-type]
    assert not (tmp_path / "bad.zarr").exists()


def test_interrupted_creation_of_an_earlier_version_is_completed(archive, tmp_path):
    store = tmp_path / "c.zarr"
    cube = _cube(archive)
    # what a kill left behind before this version: the arrays, no ledger
    template = cube.copy(data=cube.data * 0).to_dataset(name="reflectance")
    template.to_zarr(store, mode="w", compute=False, zarr_format=3, consolidated=False)
    with pytest.raises(SentinelCubeError, match="run to_zarr"):
        open_zarr(store)
    to_zarr(cube, store, progress=False)
    _assert_same(open_zarr(store).compute(), cube.compute())


@pytest.mark.parametrize("missing", [False, True])
def test_a_new_store_has_the_metadata_xarray_writes_for_the_whole_cube(archive, tmp_path, missing):
    """The store is created with no time step and grown by each write; every array's
    metadata equals what xarray writes for the whole cube (the reference: xarray's own
    write of the cube's dataset, pixels left unwritten), also for per-time coordinates
    of strings whose first value is missing."""
    from sentinel_cube import _store_layout as layout
    from sentinel_cube.store import _encoding

    cube = _cube(archive)
    if missing:  # a metadata field some products lack
        values = cube.processingbaseline.values.copy()
        values[0] = None
        cube = cube.assign_coords(processingbaseline=("time", values))
    store = tmp_path / "c.zarr"
    to_zarr(cube, store, chunks=128, progress=False)
    reference = cube.copy(data=cube.data * 0)
    reference.attrs = {k: v for k, v in cube.attrs.items() if k != "_FillValue"}
    reference.encoding = {}
    dataset = reference.to_dataset(name="reflectance")
    dataset.reflectance.encoding["_FillValue"] = np.nan
    dataset.attrs[layout.MARKER] = layout.FORMAT_VERSION
    encodings = {"reflectance": _encoding(128, 128, "lz4", None, None),
                 "time": dict(layout.TIME_ENCODING)}  # fmt: skip
    for coord in dataset.coords:
        dataset[coord].encoding = {}
        if dataset[coord].dims == ("time",):
            encodings.setdefault(str(coord), {})["chunks"] = (layout.COORD_CHUNK,)
    dataset.to_zarr(tmp_path / "ref.zarr", compute=False, zarr_format=3, consolidated=False,
                    encoding=encodings)  # fmt: skip
    names = sorted(p.parent.name for p in (tmp_path / "ref.zarr").glob("*/zarr.json"))
    assert {"processingbaseline", "product_id", "reflectance", "time", "x"} <= set(names)
    for name in names:
        ours = json.loads((store / name / "zarr.json").read_text())
        theirs = json.loads((tmp_path / "ref.zarr" / name / "zarr.json").read_text())
        assert ours == theirs, name  # the shape too: the store grew to the cube's length
    back = open_zarr(store).compute()
    kept = ["processingbaseline"] if missing else []
    _assert_same(back.drop_vars(kept), cube.drop_vars(kept).compute())


def test_per_step_coordinates_of_two_dimensions_are_stored_and_appended(archive, tmp_path):
    """A stretch per step has (time, band) bounds: created with the store, then
    appended, every step's bounds and pixels read back as computed."""
    import sentinel_cube as sc

    full = sc.stretch(_cube(archive), (2, 98), dims=("y", "x")).compute()
    assert full.stretch_low.dims == ("time", "band") and full.sizes["time"] >= 2
    store = tmp_path / "s.zarr"
    to_zarr(full.isel(time=slice(0, 1)), store, progress=False)
    to_zarr(full, store, progress=False)  # appends the other steps
    back = open_zarr(store).compute()
    np.testing.assert_array_equal(back.values, full.values)
    for name in ("stretch_low", "stretch_high"):
        assert back[name].dims == ("time", "band")
        np.testing.assert_array_equal(back[name].values, full[name].values)


def test_writing_a_cube_imports_no_dask_distributed(archive, tmp_path):
    """With no ``distributed`` client (none can exist before it is imported), open_cube
    and to_zarr never import it: its import held every core but one for ~0.1 s."""
    code = textwrap.dedent(
        """
        import sys
        from sentinel_cube.cube import open_cube
        from sentinel_cube.store import to_zarr
        cube = open_cube(sys.argv[1].split(","), bands=["B04", "B08"], resolution=300,
                         chunks=128)
        to_zarr(cube, sys.argv[2], progress=False)
        print(sorted(m for m in sys.modules if m.split(".")[0] == "distributed"))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("SENTINEL_CUBE_TILE_CACHE_MB", None)
    paths = ",".join(map(str, archive))
    done = subprocess.run([sys.executable, "-c", code, paths, str(tmp_path / "c.zarr")],
                          env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"
    _assert_same(open_zarr(tmp_path / "c.zarr").compute(), _cube(archive).compute())


def test_a_store_that_is_not_ours_is_never_touched(archive, tmp_path):
    store = tmp_path / "foreign.zarr"
    xr.Dataset({"v": ("x", np.arange(3))}).to_zarr(store, zarr_format=3, consolidated=False)
    files = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    with pytest.raises(SentinelCubeError, match="not a sentinel_cube cube store"):
        to_zarr(_cube(archive), store, progress=False)
    with pytest.raises(SentinelCubeError, match="not a sentinel_cube cube store"):
        open_zarr(store)
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == files


def test_a_killed_creation_leaves_no_store_or_an_empty_one(archive, tmp_path):
    """The rename that publishes a new store is atomic; a kill before it leaves no store."""
    code = textwrap.dedent(
        """
        import os, signal, sys
        from sentinel_cube.cube import open_cube
        from sentinel_cube.store import to_zarr
        real = os.rename
        def rename(src, dst):  # die the moment the store would appear
            if sys.argv[2] == "after":
                real(src, dst)
            os.kill(os.getpid(), signal.SIGKILL)
        os.rename = rename
        cube = open_cube(sys.argv[1].split(","), bands=["B04", "B08"], resolution=300,
                         chunks=128)
        to_zarr(cube, sys.argv[3], progress=False)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    paths = ",".join(map(str, archive))
    for when in ("before", "after"):
        target = tmp_path / f"{when}.zarr"
        done = subprocess.run([sys.executable, "-c", code, paths, when, str(target)], env=env)
        assert done.returncode == -signal.SIGKILL
        if when == "before":
            assert not target.exists()
            assert list(tmp_path.glob(f".{target.name}.*.creating"))  # the unpublished copy
        else:
            assert open_zarr(target).sizes["time"] == 0  # opens, with no step
        to_zarr(_cube(archive), target, progress=False)
        _assert_same(open_zarr(target).compute(), _cube(archive).compute())
        assert not list(tmp_path.glob(f".{target.name}.*"))  # the dead writer's copy is gone


def test_a_store_of_the_first_format_opens_and_is_copied_before_appending(revisits, tmp_path):
    """Format 1 (before this version): times encoded by xarray from the first write,
    a ledger of slots only. Such stores open; appending asks for a copy."""
    import zarr

    def cube(paths):
        return open_cube(paths, bands=["B04"], resolution=300, chunks=128)

    first = cube(revisits[:2])
    old = tmp_path / "old.zarr"
    dataset = first.compute().to_dataset(name="reflectance")
    dataset.to_zarr(old, zarr_format=3, consolidated=False)  # xarray picks the time units
    units = json.loads((old / "time" / "zarr.json").read_text())["attributes"]["units"]
    assert "1970" not in units  # units relative to the first time, as xarray chose them
    zarr.open_group(old, mode="r+").create_group(
        "_sentinel_cube",
        attributes={"version": 1, "slots": 2, "committed": [0, 1], "variable": "reflectance"},
    )
    _assert_same(open_zarr(old).compute(), first.compute())
    later = cube(revisits[2:3])  # another time of day
    with pytest.raises(SentinelCubeError, match="earlier sentinel_cube.*to_zarr\\(open_zarr"):
        to_zarr(later, old, progress=False)
    new = tmp_path / "new.zarr"
    to_zarr(open_zarr(old), new, progress=False)
    to_zarr(later, new, progress=False)
    _assert_same(open_zarr(new).compute(), cube(revisits[:3]).compute())


@pytest.mark.parametrize("chunks", [64, 100, 200])
def test_appending_a_cube_chunked_unlike_the_store_loses_nothing(revisits, tmp_path, chunks):
    """Each write task covers whole stored chunks, whatever the cube's chunking (two tasks
    writing parts of one chunk file would each rewrite it, and one would be lost)."""
    import dask

    store = tmp_path / "c.zarr"
    to_zarr(open_cube(revisits[:1], bands=["B04"], resolution=300, chunks=128), store,
            progress=False)  # fmt: skip
    later = open_cube(revisits[1:3], bands=["B04"], resolution=300, chunks=chunks)
    with dask.config.set(scheduler="threads", num_workers=8):
        to_zarr(later, store, progress=False)
    expected = open_cube(revisits[:3], bands=["B04"], resolution=300, chunks=128)
    _assert_same(open_zarr(store).compute(), expected.compute())


# the chunk files that fail: all of the second step's, or only its second band's (the
# other chunks of the same write task land: a write task writes its chunks side by side)
@pytest.mark.parametrize("failing", ["/c/1/", "/c/1/1/"])
def test_a_full_disk_is_a_clear_error_and_the_rerun_resumes(
    archive, tmp_path, monkeypatch, failing
):
    import errno

    import zarr.storage._local as local

    store = tmp_path / "c.zarr"
    real_put = local._put
    writes = []

    def put(path, value, *args, **kwargs):  # the disk fills up during the second step
        if failing in str(path).replace("\\", "/") and "reflectance" in str(path):
            writes.append(path)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_put(path, value, *args, **kwargs)

    monkeypatch.setattr(local, "_put", put)
    with pytest.raises(SentinelCubeError, match="No space left.*intact.*run the same call"):
        to_zarr(_cube(archive), store, progress=False)
    assert writes
    monkeypatch.setattr(local, "_put", real_put)
    partial = open_zarr(store)
    cube = _cube(archive)
    # steps run side by side: those whose chunks all landed are committed, the second
    # step (slot 1) never is
    kept = [t for t in cube.time.values if t in partial.time.values]
    assert 1 <= len(kept) < len(DATES) and cube.time.values[1] not in kept
    _assert_same(partial.compute(), cube.sel(time=kept).compute())
    report = to_zarr(_cube(archive), store, progress=False, lock_timeout=0)  # lock released
    assert len(report.written) == len(DATES) - len(kept)
    _assert_same(open_zarr(store).compute(), _cube(archive).compute())


def test_a_users_own_xarray_copy_of_a_cube_is_never_replaced(archive, tmp_path):
    """It carries our attributes but no ledger, and holds data: not ours to touch."""
    store = tmp_path / "mine.zarr"
    _cube(archive).compute().to_dataset(name="reflectance").to_zarr(
        store, zarr_format=3, consolidated=False
    )
    files = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    with pytest.raises(SentinelCubeError, match="not a sentinel_cube cube store"):
        to_zarr(_cube(archive), store, progress=False)
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == files


@pytest.mark.parametrize("configured", [{"scheduler": "threads"}, {}])
def test_steps_run_side_by_side_and_commit_as_they_complete(
    archive, tmp_path, monkeypatch, configured
):
    """No barrier between steps: while the first step's slow chunk is read, the other
    steps are read, written and committed; the first commits last. Also with no
    scheduler configured (dask's default, threads)."""
    import threading

    from sentinel_cube import _graph
    from sentinel_cube import _store_layout as layout

    real_read, real_commit = _graph.read_source, layout.commit
    cube = _cube(archive)
    first_day = str(cube.time.values[0])[:10].replace("-", "")
    events: list[tuple[str, float, object]] = []
    lock = threading.Lock()

    def reading(source, grid, *args, **kwargs):
        slow = first_day in source.path and "B04" in source.path and grid.bounds[0] < 350000
        started = time.perf_counter()
        if slow:
            time.sleep(2.0)
        out = real_read(source, grid, *args, **kwargs)
        with lock:
            events.append(("slow" if slow else "read", started, time.perf_counter()))
        return out

    def committing(loc, slot, time_ns):
        events.append(("commit", time.perf_counter(), int(time_ns)))
        return real_commit(loc, slot, time_ns)

    monkeypatch.setattr(_graph, "read_source", reading)
    monkeypatch.setattr(layout, "commit", committing)
    with dask.config.set(num_workers=2, **configured):
        report = to_zarr(cube, tmp_path / "c.zarr", progress=False)
    slow = [e for e in events if e[0] == "slow"]
    assert slow, "the slow read never happened"
    slow_end = max(e[2] for e in slow)
    commits = [e for e in events if e[0] == "commit"]
    times = [int(t) for t in layout.nanoseconds(cube.time.values)]
    assert sorted(c[2] for c in commits) == sorted(times)
    # other steps were committed while the first step's slow chunk was still being read
    assert any(c[1] < slow_end and c[2] != times[0] for c in commits)
    assert commits[-1][2] == times[0]
    assert len(report.written) == len(DATES)
    _assert_same(open_zarr(tmp_path / "c.zarr").compute(), _cube(archive).compute())


def test_any_chunking_of_the_cube_is_stored_the_same(archive, tmp_path):
    cube = _cube(archive)
    odd = cube.copy(data=cube.data.rechunk((3, 2, 70, 100)))  # across steps and chunks
    to_zarr(odd, tmp_path / "odd.zarr", progress=False)
    _assert_same(open_zarr(tmp_path / "odd.zarr").compute(), cube.compute())


def test_a_custom_scheduler_writes_one_step_after_the_other(archive, tmp_path):
    calls = []

    def scheduler(dsk, keys, **kwargs):
        calls.append(len(keys) if isinstance(keys, list) else 1)
        return dask.get(dsk, keys, **kwargs)

    with dask.config.set(scheduler=scheduler):
        report = to_zarr(_cube(archive), tmp_path / "c.zarr", progress=False)
    assert len(report.written) == len(DATES) and len(calls) >= len(DATES)
    _assert_same(open_zarr(tmp_path / "c.zarr").compute(), _cube(archive).compute())


def test_a_fresh_cube_off_the_store_grid_reads_the_store_chunks_directly(archive, tmp_path):
    """A cube's chunks follow its first product's JP2 tiles, the store's start at its
    corner: each write task then reads its own store chunk (no rechunk: no reads of up to
    four blocks cut and joined in memory), with the same pixels; anything other than a
    fresh cube is rechunked."""
    from sentinel_cube.store import _on_store_grid

    cube = _cube(archive)
    left, bottom, right, top = cube.rio.bounds()
    shifted = _cube(archive, bounds=(left + 3 * 300, bottom, right, top - 5 * 300))
    assert shifted.data.chunks[2][0] != 128 and shifted.data.chunks[3][0] != 128
    data = shifted.data
    expected = data.compute(scheduler="sync")
    store_chunks = (1, 1, 128, 128)
    on_grid = _on_store_grid(data, store_chunks)
    assert not any("rechunk" in name for name in on_grid.dask.layers)
    assert on_grid.chunks[2][:-1] == (128,) * (len(on_grid.chunks[2]) - 1)
    assert on_grid.chunks[3][:-1] == (128,) * (len(on_grid.chunks[3]) - 1)
    assert len(on_grid.dask) == on_grid.npartitions + 1  # one read per block (+ the reader)
    np.testing.assert_array_equal(on_grid.compute(scheduler="sync"), expected)
    changed = _on_store_grid(data * 1, store_chunks)
    assert any("rechunk" in name for name in changed.dask.layers)
    np.testing.assert_array_equal(changed.compute(scheduler="sync"), expected)
    to_zarr(shifted, tmp_path / "s.zarr", progress=False)
    _assert_same(open_zarr(tmp_path / "s.zarr").compute(), shifted.compute())


@pytest.mark.parametrize(("dtype", "fill"), [("float32", np.nan), ("uint16", 0)])
def test_chunk_writer_stores_exactly_the_chunks_holding_data(tmp_path, dtype, fill):
    """Chunk by chunk, with or without Zarr's emptiness check: chunks of nothing but the
    fill value are not stored (also one whose first pixel is the only fill), the rest are,
    and the pixels read back equal the block; edge chunks of the array included."""
    import zarr
    from zarr.storage import LocalStore

    from sentinel_cube._store_location import StoreLocation
    from sentinel_cube.store import ChunkWriter

    path = tmp_path / "s.zarr"
    chunks = (1, 1, 4, 4)
    zarr.create_array(LocalStore(path), name="cube", shape=(3, 2, 10, 9), chunks=chunks,
                      dtype=dtype, fill_value=fill)  # fmt: skip
    rng = np.random.default_rng(7)
    block = rng.integers(1, 10_000, size=(1, 2, 10, 9)).astype(dtype)
    block[0, 0, 0:4, 0:4] = fill  # all fill: not stored
    block[0, 0, 0, 4] = fill  # its first pixel only: stored
    block[0, 1, 4:8, :] = fill  # a row of chunks of fill, edge chunk included
    block[0, 1, 8:10, 8] = fill  # an edge chunk of fill
    block[0, 1, 9, 0] = fill  # fill in a chunk's last pixel only
    writer = ChunkWriter(StoreLocation(path), "cube")
    writer[(slice(1, 2), slice(0, 2), slice(0, 10), slice(0, 9))] = block
    stored = zarr.open_array(LocalStore(path), path="cube", mode="r")
    np.testing.assert_array_equal(stored[1:2], block)
    assert np.all(stored[0] == fill) if fill == 0 else np.isnan(stored[0]).all()

    expected = set()
    for b in range(2):
        for r in range(3):
            for c in range(3):
                part = block[0, b, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4]
                empty = np.isnan(part).all() if np.isnan(fill) else np.all(part == fill)
                if not empty:
                    expected.add(f"1/{b}/{r}/{c}")
    files = {
        str(f.relative_to(path / "cube" / "c")) for f in (path / "cube" / "c").rglob("*")
        if f.is_file()
    }  # fmt: skip
    assert files == expected
    assert "1/0/0/0" not in files and "1/0/0/1" in files and "1/1/2/2" not in files


@pytest.mark.parametrize(("dtype", "fill"), [("float32", np.nan), ("uint16", 0)])
def test_chunk_writer_finds_data_between_the_sampled_pixels(tmp_path, dtype, fill):
    """Chunks of 100 x 70 px, where the writer samples every 3rd row and 2nd column:
    a chunk whose only data lies between the samples, or only in its last pixel, is
    stored; one whose data starts after its first pixel is stored; one of fill only
    is not. Expected chunk files from numpy over the written block."""
    import zarr
    from zarr.storage import LocalStore

    from sentinel_cube._store_location import StoreLocation
    from sentinel_cube.store import ChunkWriter, holds_data

    path = tmp_path / "s.zarr"
    chunks = (1, 1, 100, 70)
    zarr.create_array(LocalStore(path), name="cube", shape=(1, 5, 190, 70), chunks=chunks,
                      dtype=dtype, fill_value=fill)  # fmt: skip
    block = np.full((1, 5, 190, 70), fill, dtype=dtype)
    block[0, 0, 1, 1] = 7  # between the sampled rows and columns only
    block[0, 1, 99, 69] = 7  # the chunk's last pixel only
    block[0, 2, 40:, 30:] = 7  # a footprint's edge: data from a sampled pixel on
    block[0, 3, 100:, :] = 7  # the second (edge) chunk only; the first is all fill
    block[0, 4, 100 + 3 * 7 + 1, 5] = 7  # the edge chunk: between its samples
    piece = block[0:1, 0:1, :100, :]
    assert not holds_data(piece, fill) and holds_data(block[0:1, 2:3, :100, :], fill)
    writer = ChunkWriter(StoreLocation(path), "cube")
    writer[(slice(0, 1), slice(0, 5), slice(0, 190), slice(0, 70))] = block
    stored = zarr.open_array(LocalStore(path), path="cube", mode="r")
    np.testing.assert_array_equal(stored[:], block)
    expected = {
        f"0/{b}/{r}/0"
        for b in range(5)
        for r in range(2)
        if np.any(block[0, b, r * 100 : r * 100 + 100] != fill)
        and not np.isnan(block[0, b, r * 100 : r * 100 + 100]).all()
    }
    assert len(expected) == 6
    files = {
        str(f.relative_to(path / "cube" / "c")) for f in (path / "cube" / "c").rglob("*")
        if f.is_file()
    }  # fmt: skip
    assert files == expected
