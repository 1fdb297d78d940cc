"""The store under real failures: SIGKILL at seeded random moments, concurrent appenders.

Every trial is compared with an uninterrupted ingest of the same products, computed
in this process: after a kill the store opens (or does not exist) holding only
complete steps equal to the reference's, and a rerun makes it equal to the
reference, chunk files byte for byte.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sentinel_cube._store_layout import state
from sentinel_cube._store_location import StoreLocation
from sentinel_cube.cube import open_cube
from sentinel_cube.store import open_zarr, to_zarr
from sentinel_cube.testing import BUDAPEST_TILES, default_specs, make_archive

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
DATES = ("2023-06-06", "2023-06-16", "2023-06-26", "2023-07-06")
BANDS = ["B04", "B08"]
#: Trials of each scenario (a fresh store, an append to a store holding two steps).
TRIALS = 10
#: Trials of each scenario on the S3 server (each request is slower than a file write);
#: the two scenarios together cover the five phases.
TRIALS_S3 = 3
SEED = 20261201


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults-archive")
    specs = default_specs(tiles=BUDAPEST_TILES, dates=DATES)
    return make_archive(root, specs, scale=30, bands=BANDS)


@pytest.fixture(scope="module")
def spec(archive):
    full = open_cube(archive, bands=BANDS, resolution=300, chunks=128)
    return {"bands": BANDS, "resolution": 300, "chunks": 128, "bounds": list(full.rio.bounds())}


def _cube(paths, spec):
    return open_cube(paths, bands=spec["bands"], resolution=spec["resolution"],
                     chunks=spec["chunks"], bounds=tuple(spec["bounds"]))  # fmt: skip


def _by_date(archive, dates):
    return [str(p) for p in archive if any(d.replace("-", "") in p.name for d in dates)]


def _run_driver(trials, tmp_path, spec) -> list[dict]:
    report = tmp_path / "report.jsonl"
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({**spec, "trials": trials, "report": str(report)}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    done = subprocess.run(
        [sys.executable, str(TESTS / "_store_fault_driver.py"), str(spec_file)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in report.read_text().splitlines()]
    assert all(r["killed"] or r["status"] == 0 for r in results), done.stderr[-3000:]
    return results


def _phase(event: str) -> str:
    """What a file change belongs to, from the changed path."""
    if ".creating" in event:
        return "create"
    if "/.lock" in event:
        return "lock"
    if "/_sentinel_cube/zarr.json" in event:
        return "commit"
    if "/c/" in event and ("/reflectance/" in event or "/dn/" in event):
        return "chunk"
    if event.endswith("zarr.json"):
        return "resize"
    return "coords"


def _chunk_files(store: str | Path) -> dict[str, bytes]:
    """The cube's chunk files (or objects), by key relative to the store."""
    if str(store).startswith("s3://"):
        loc = StoreLocation(str(store))
        fs, base = loc.fs(), loc.key()
        fs.invalidate_cache()
        keys = fs.find(loc.key("reflectance/c"))
        return {key[len(base) + 1 :]: fs.cat_file(key) for key in keys}
    folder = Path(store) / "reflectance" / "c"
    return {str(p.relative_to(store)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _assert_same(a: xr.DataArray, b: xr.DataArray) -> None:
    assert a.dims == b.dims and a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.values, b.values)
    for name in a.coords:
        if name != "spatial_ref":
            np.testing.assert_array_equal(np.asarray(a[name].values), np.asarray(b[name].values))


def _pick(events: list[str], count: int, rng: random.Random, first: int = 0) -> list[int]:
    """``count`` event numbers: one in every phase first (in name order, from phase number
    ``first`` on, wrapping round), the rest uniformly at random."""
    by_phase: dict[str, list[int]] = {}
    for number, event in enumerate(events, start=1):
        by_phase.setdefault(_phase(event), []).append(number)
    phases = sorted(by_phase.items())
    phases = phases[first % len(phases) :] + phases[: first % len(phases)]
    picks = [rng.choice(numbers) for _, numbers in phases]
    while len(picks) < count:
        picks.append(rng.randint(1, len(events)))
    return sorted(picks[:count])


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_only_complete_steps_and_resumes(archive, spec, tmp_path):
    _sigkill_trials(archive, spec, tmp_path, lambda name: str(tmp_path / name), TRIALS)


@pytest.mark.slow
def test_sigkill_during_s3_requests_leaves_only_complete_steps_and_resumes(
    archive, spec, tmp_path, s3_env
):
    # larger chunks than the folder trials: each request to moto costs ~20 ms
    _sigkill_trials(
        archive, {**spec, "chunks": 256}, tmp_path, _bucket_per_store(s3_env), TRIALS_S3
    )


def _bucket_per_store(server):
    """``place(name)`` giving ``s3://<new bucket>/name``: moto lists in time linear in a
    bucket's keys, so each store gets a bucket of its own."""
    client = server.client()

    def place(name: str) -> str:
        bucket = f"faults-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)
        return f"s3://{bucket}/{name}"

    return place


def _sigkill_trials(archive, spec, tmp_path, place, trials_per_scenario: int) -> None:
    """Kill ingests at seeded moments; each store must hold complete steps and resume.

    ``place(name)`` gives a store's location (a folder or an ``s3://`` URL); the
    references are local stores, so an S3 store is also compared with a folder's
    chunk files byte for byte.
    """
    rng = random.Random(SEED)
    first = _by_date(archive, DATES[:2])
    full = _by_date(archive, DATES)
    references = {}
    for scenario, before in (("fresh", []), ("append", first)):
        reference = tmp_path / f"reference-{scenario}.zarr"
        if before:
            to_zarr(_cube(before, spec), reference, progress=False)
        to_zarr(_cube(full, spec), reference, progress=False)
        references[scenario] = reference
    # count the changes (files or requests) of an uninterrupted run of each scenario
    counting = [
        {"first": before, "second": full, "store": place(f"count-{scenario}.zarr"),
         "kill_at": 0, "after": False, "scenario": scenario}
        for scenario, before in (("fresh", []), ("append", first))
    ]  # fmt: skip
    counted = {r["scenario"]: r["events"] for r in _run_driver(counting, tmp_path, spec)}
    trials = []
    for n, (scenario, before) in enumerate((("fresh", []), ("append", first))):
        # the second scenario starts where the first one's phases stopped
        picks = _pick(counted[scenario], trials_per_scenario, rng, n * trials_per_scenario)
        for i, kill_at in enumerate(picks):
            trials.append({
                "first": before, "second": full, "kill_at": kill_at, "after": bool(i % 2),
                "store": place(f"{scenario}-{i}.zarr"), "scenario": scenario,
                "phase": _phase(counted[scenario][kill_at - 1]),
            })  # fmt: skip
    results = _run_driver(trials, tmp_path, spec)
    assert len(results) == 2 * trials_per_scenario
    assert all(r["killed"] for r in results), [r for r in results if not r["killed"]]
    phases = Counter(r["phase"] for r in results)
    assert {"chunk", "resize", "commit", "coords", "lock"} <= set(phases), phases

    expected = {k: open_zarr(v).compute() for k, v in references.items()}
    expected_files = {k: _chunk_files(v) for k, v in references.items()}
    survived = 0
    for result in results:
        store = result["store"]
        reference = expected[result["scenario"]]
        found = state(StoreLocation(store))
        if found == "ours":
            partial = open_zarr(store).compute()
            assert set(partial.time.values) <= set(reference.time.values), result
            _assert_same(partial, reference.sel(time=partial.time.values))
            if result["scenario"] == "append":  # the first ingest's steps are never lost
                assert partial.sizes["time"] >= 2, result
        else:  # killed before the store was complete: a fresh store, holding nothing
            assert result["scenario"] == "fresh" and found in ("missing", "interrupted"), result
        report = to_zarr(_cube(full, spec), store, progress=False)  # the rerun
        _assert_same(open_zarr(store).compute(), reference)
        assert _chunk_files(store) == expected_files[result["scenario"]], result
        if not store.startswith("s3://"):
            assert not list(Path(store).rglob("*.partial"))
        assert len(report.written) + len(report.skipped) == len(DATES)
        survived += 1
    assert survived == 2 * trials_per_scenario
    total = 2 * trials_per_scenario
    print(f"\nSIGKILL trials survived: {survived}/{total}; phases: {dict(phases)}")


_APPENDER = textwrap.dedent(
    """
    import sys, time
    from sentinel_cube.cube import open_cube
    from sentinel_cube.store import to_zarr
    paths, store, start = sys.argv[1].split(","), sys.argv[2], float(sys.argv[3])
    bounds = tuple(float(v) for v in sys.argv[4].split(","))
    chunks = int(sys.argv[5])
    cube = open_cube(paths, bands=["B04", "B08"], resolution=300, chunks=chunks, bounds=bounds)
    while time.time() < start:  # both writers start together
        time.sleep(0.001)
    report = to_zarr(cube, store, progress=False, lock_timeout=120)
    print(len(report.written))
    """
)


@pytest.mark.slow
def test_concurrent_appenders_lose_nothing(archive, spec, tmp_path):
    _concurrent_rounds(archive, spec, tmp_path, lambda name: str(tmp_path / name), 3)


@pytest.mark.slow
def test_concurrent_appenders_on_s3_lose_nothing(archive, spec, tmp_path, s3_env):
    _concurrent_rounds(archive, {**spec, "chunks": 256}, tmp_path, _bucket_per_store(s3_env), 2)


def _concurrent_rounds(archive, spec, tmp_path, place, rounds: int) -> None:
    """Two processes append their own dates to one store at the same moment."""
    import time

    env = {**os.environ, "PYTHONPATH": str(SRC)}
    bounds = ",".join(str(v) for v in spec["bounds"])
    reference = open_zarr_reference(archive, spec, tmp_path)
    for round_ in range(rounds):
        store = place(f"shared-{round_}.zarr")
        # each writer appends its own dates; the rounds vary who has more to write
        mine = _by_date(archive, DATES[: 1 + round_])
        theirs = _by_date(archive, DATES[1 + round_ :])
        start = time.time() + 4.0
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _APPENDER,
                    ",".join(paths),
                    str(store),
                    str(start),
                    bounds,
                    str(spec["chunks"]),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for paths in (mine, theirs)
        ]
        outputs = [p.communicate(timeout=300) for p in processes]
        assert [p.returncode for p in processes] == [0, 0], [o[1][-2000:] for o in outputs]
        written = sum(int(o[0].split()[-1]) for o in outputs)
        assert written == len(DATES)
        _assert_same(open_zarr(store).compute(), reference)


def open_zarr_reference(archive, spec, tmp_path) -> xr.DataArray:
    reference = tmp_path / f"reference-{uuid.uuid4().hex[:8]}.zarr"
    to_zarr(_cube(_by_date(archive, DATES), spec), reference, progress=False)
    return open_zarr(reference).compute()
