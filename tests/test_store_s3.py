"""Cube stores on object storage (moto's S3 on the loopback): the local store's guarantees.

Each S3 store is compared with a local store of the same cube: values, coordinates
and the compressed chunk bytes. Kills at random requests and concurrent writers
are in ``test_store_faults.py``; the lock record's conditional requests in
``test_store_lock.py``.
"""

from __future__ import annotations

import pickle
import socket
import time
import uuid
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

from _s3 import KEY_ID, SECRET, Fault
from sentinel_cube._store_layout import state
from sentinel_cube._store_location import StoreLocation
from sentinel_cube.cube import open_cube
from sentinel_cube.exceptions import SentinelCubeError
from sentinel_cube.store import ChunkWriter, StoreLockedError, open_zarr, to_zarr
from sentinel_cube.testing import BUDAPEST_TILES, default_specs, make_archive

BANDS = ["B04", "B08"]
DATES = ("2023-06-06", "2023-06-16", "2023-06-26")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("s3-store-archive")
    specs = default_specs(tiles=BUDAPEST_TILES, dates=DATES)
    return make_archive(root, specs, scale=61, bands=BANDS)


def _cube(archive, dates=DATES, **kwargs) -> xr.DataArray:
    paths = [p for p in archive if any(d.replace("-", "") in p.name for d in dates)]
    return open_cube(paths, bands=BANDS, resolution=610, chunks=128, **kwargs)


@pytest.fixture
def url(s3_env) -> str:
    """A store URL in a bucket of its own (moto lists in time linear in a bucket's keys)."""
    bucket = f"store-{uuid.uuid4().hex[:12]}"
    s3_env.client().create_bucket(Bucket=bucket)
    return f"s3://{bucket}/cubes/budapest.zarr"


def _objects(url: str, below: str = "") -> dict[str, bytes]:
    loc = StoreLocation(url)
    fs, base = loc.fs(), loc.key()
    return {k[len(base) + 1 :]: fs.cat_file(k) for k in fs.find(loc.key(below))}


def _files(path: Path, below: str = "") -> dict[str, bytes]:
    folder = path / below
    return {
        p.relative_to(path).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_a_store_on_s3_equals_the_local_store(archive, url, tmp_path):
    cube = _cube(archive)
    local = tmp_path / "local.zarr"
    to_zarr(cube, local, progress=False)
    report = to_zarr(cube, url, progress=False)
    assert report.store == url and len(report.written) == len(DATES)
    chunks = _objects(url, "reflectance/c")
    assert report.bytes_written == sum(len(b) for b in chunks.values()) > 0
    assert chunks == _files(local, "reflectance/c")  # the same compressed bytes
    xr.testing.assert_identical(open_zarr(url).load(), open_zarr(local).load())
    np.testing.assert_array_equal(open_zarr(url).values, cube.values)


def test_appends_resume_and_a_second_run_writes_nothing(archive, url):
    full = _cube(archive)
    assert to_zarr(_cube(archive, DATES[:1], bounds=full.rio.bounds()), url, progress=False).written
    again = to_zarr(full, url, progress=False)
    assert len(again.written) == len(DATES) - 1 and len(again.skipped) == 1
    assert to_zarr(full, url, progress=False).written == ()
    stored = open_zarr(url)
    np.testing.assert_array_equal(stored.time.values, full.time.values)
    np.testing.assert_array_equal(stored.values, full.values)


def test_acquisitions_at_other_times_of_day_append_exactly(archive, url):
    cube = _cube(archive)
    shifted = [
        cube.isel(time=[i]).assign_coords(time=cube.time.values[i : i + 1] + offset)
        for i, offset in enumerate(
            np.array([0, 23_417_000_123, 6 * 3600 * 10**9 + 1], dtype="timedelta64[ns]")
        )
    ]
    for step in shifted:
        to_zarr(step, url, progress=False)
    expected = np.concatenate([s.time.values for s in shifted])
    np.testing.assert_array_equal(open_zarr(url).time.values, np.sort(expected))
    # any Zarr reader decodes the same times (fsspec options as a user would give them)
    plain = xr.open_zarr(
        url, consolidated=False, storage_options=StoreLocation(url)._storage_options()
    )
    np.testing.assert_array_equal(np.sort(plain.time.values), np.sort(expected))


def test_shards_on_s3(archive, url, tmp_path):
    cube = _cube(archive)
    to_zarr(cube, url, shards=256, progress=False)
    keys = _objects(url, "reflectance/c")
    per_step = -(-cube.sizes["y"] // 256) * -(-cube.sizes["x"] // 256)
    assert len(keys) == len(DATES) * len(BANDS) * per_step
    np.testing.assert_array_equal(open_zarr(url).values, cube.values)


def test_modes_replace_and_refuse(archive, url):
    cube = _cube(archive)
    to_zarr(cube, url, progress=False)
    with pytest.raises(SentinelCubeError, match="exists; use mode='a'"):
        to_zarr(cube, url, mode="w-", progress=False)
    first = cube.isel(time=[0])
    report = to_zarr(first, url, mode="w", progress=False)
    assert len(report.written) == 1
    assert open_zarr(url).sizes["time"] == 1
    assert all("/c/1/" not in key and "/c/2/" not in key for key in _objects(url, "reflectance"))


def test_another_grid_is_refused_and_the_store_untouched(archive, url):
    cube = _cube(archive)
    to_zarr(cube, url, progress=False)
    before = _objects(url)
    left, bottom, right, top = cube.rio.bounds()
    shifted = _cube(archive, bounds=(left + 610, bottom, right + 610, top))
    with pytest.raises(SentinelCubeError, match="grid or bands differ"):
        to_zarr(shifted, url, progress=False)
    assert _objects(url) == before


def test_a_creation_cut_short_is_rebuilt_but_a_copy_holding_data_is_not(archive, url, s3_env):
    cube = _cube(archive)
    to_zarr(cube.isel(time=[]), url, progress=False)  # an empty store: metadata only
    loc = StoreLocation(url)
    loc.fs().rm_file(loc.key("_sentinel_cube/zarr.json"))  # as if killed before the ledger
    assert state(loc) == "interrupted"
    with pytest.raises(SentinelCubeError, match="creation was interrupted"):
        open_zarr(url)
    to_zarr(cube, url, progress=False)
    np.testing.assert_array_equal(open_zarr(url).values, cube.values)
    # a user's own copy of the cube (no ledger, but data): never replaced
    copy = url.replace("budapest.zarr", "copy.zarr")
    open_zarr(url).to_dataset().to_zarr(
        copy, consolidated=False, storage_options=loc._storage_options()
    )
    assert state(StoreLocation(copy)) == "foreign"
    with pytest.raises(SentinelCubeError, match="not a sentinel_cube cube store"):
        to_zarr(cube, copy, progress=False)


def test_a_live_writer_holds_the_store(archive, url):
    cube = _cube(archive)
    to_zarr(cube.isel(time=[0]), url, progress=False)
    from sentinel_cube._store_lock import StoreLock

    with StoreLock(StoreLocation(url).lock_file()):
        with pytest.raises(StoreLockedError, match=f"process \\d+ on host .*{url}|{url}"):
            to_zarr(cube, url, progress=False, lock_timeout=0)
    assert len(to_zarr(cube, url, progress=False).written) == len(DATES) - 1


def test_write_tasks_carry_no_secret(archive, url, s3_env, monkeypatch):
    options = {"key": KEY_ID, "secret": SECRET, "endpoint_url": s3_env.endpoint_url}
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    writer = ChunkWriter(StoreLocation(url, options), "reflectance")
    assert SECRET.encode() not in pickle.dumps(writer)
    assert SECRET.encode() not in pickle.dumps(StoreLocation(url, options))
    # the threaded scheduler (no pickling) writes with the explicit keys
    cube = _cube(archive)
    with dask.config.set(scheduler="threads"):
        to_zarr(cube, url, progress=False, storage_options=options)
    np.testing.assert_array_equal(open_zarr(url, storage_options=options).values, cube.values)


def test_process_workers_write_with_their_own_keys(archive, url, s3_env, tmp_path):
    from distributed import Client, LocalCluster

    cube = _cube(archive)
    # the workers inherit the environment (AWS_* of the S3 server), as a cluster's would
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, local_directory=tmp_path) as cluster:  # fmt: skip
        with Client(cluster):
            report = to_zarr(cube, url, progress=False)
    assert len(report.written) == len(DATES)
    np.testing.assert_array_equal(open_zarr(url).values, cube.values)


# ------------------------------------------------------------------------ bad input


def test_wrong_keys_are_a_clear_error_without_the_secret(archive, url):
    wrong = "wrong-secret-Zk2bN8"
    with pytest.raises(SentinelCubeError) as error:
        to_zarr(_cube(archive), url, storage_options={"key": "AKIAWRONGKEY", "secret": wrong},
                progress=False)  # fmt: skip
    message = str(error.value)
    assert url in message and "access denied" in message and "keys" in message
    assert wrong not in message and SECRET not in message


def test_a_missing_bucket_is_named(archive, s3_env):
    url = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/cube.zarr"
    with pytest.raises(SentinelCubeError, match=f"{url}.*bucket does not exist"):
        to_zarr(_cube(archive), url, progress=False)
    with pytest.raises(SentinelCubeError, match=f"{url}.*(bucket does not exist|not a Zarr)"):
        open_zarr(url)


def test_an_endpoint_that_does_not_answer(archive, s3_env, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(SentinelCubeError, match="did not answer.*AWS_ENDPOINT_URL") as error:
        to_zarr(_cube(archive), "s3://bucket/cube.zarr", progress=False)
    assert time.monotonic() - started < 60
    assert "s3://bucket/cube.zarr" in str(error.value) and SECRET not in str(error.value)


@pytest.mark.parametrize(
    "store, message",
    [
        ("https://example.org/cube.zarr", "HTTP is read-only"),
        ("s3://bucket", "names a bucket only"),
    ],
)
def test_unwritable_locations(archive, store, message):
    with pytest.raises(SentinelCubeError, match=message):
        to_zarr(_cube(archive), store, progress=False)


def test_storage_options_for_a_local_store_are_refused(archive, tmp_path):
    with pytest.raises(SentinelCubeError, match="s3:// stores only"):
        to_zarr(_cube(archive), tmp_path / "c.zarr", storage_options={"key": "K"})


def test_throttled_chunk_writes_are_retried(archive, url, s3_env, tmp_path):
    cube = _cube(archive)
    local = tmp_path / "local.zarr"
    to_zarr(cube, local, progress=False)
    with s3_env.faults(Fault(503, path="/reflectance/c/", method="PUT", times=6)) as rules:
        to_zarr(cube, url, progress=False)
    assert rules[0].hits == 6  # six chunk writes were throttled once each, then retried
    assert _objects(url, "reflectance/c") == _files(local, "reflectance/c")


def test_a_store_throttled_throughout_fails_clearly_and_the_rerun_resumes(archive, url, s3_env):
    cube = _cube(archive)
    to_zarr(cube.isel(time=[0]), url, progress=False)
    started = time.monotonic()
    with s3_env.faults(Fault(503, path="/reflectance/c/", method="PUT")):
        with pytest.raises(SentinelCubeError) as error:
            to_zarr(cube, url, progress=False)
    assert time.monotonic() - started < 90
    message = str(error.value)
    assert url in message and "throttling" in message and "retry later" in message
    assert SECRET not in message and "Signature" not in message
    assert open_zarr(url).sizes["time"] == 1  # the committed step is intact
    report = to_zarr(cube, url, progress=False)  # the same call resumes
    assert len(report.written) == len(DATES) - 1
    np.testing.assert_array_equal(open_zarr(url).values, cube.values)


def test_the_command_line_builds_and_clips_from_s3_to_s3(archive, url, s3_env):
    from click.testing import CliRunner

    from sentinel_cube.cli import main

    bucket = url.split("/")[2]
    for folder in archive:
        s3_env.upload(folder, "archive", bucket=bucket)
    runner = CliRunner()
    args = ["build", f"s3://{bucket}/archive", "--bands", "B04", "B08", "--resolution", "610",
            "--out", url]  # fmt: skip
    built = runner.invoke(main, args)
    assert built.exit_code == 0, built.output
    assert f"wrote {len(DATES)} time steps (0 already stored) to {url}" in built.output
    again = runner.invoke(main, args)
    assert again.exit_code != 0 and "--append" in again.output  # exists: asks what to do
    resumed = runner.invoke(main, [*args, "--append"])
    assert "wrote 0 time steps (3 already stored)" in resumed.output
    expected = _cube(archive)
    np.testing.assert_array_equal(open_zarr(url).values, expected.values)
    clipped_url = url.replace("budapest.zarr", "clipped.zarr")
    clipped = runner.invoke(main, ["clip", url, "--aoi", "18.9,47.3,19.3,47.6", "--out",
                                   clipped_url])  # fmt: skip
    assert clipped.exit_code == 0, clipped.output
    small = open_zarr(clipped_url)
    assert small.sizes["time"] == len(DATES) and small.sizes["x"] < expected.sizes["x"]
