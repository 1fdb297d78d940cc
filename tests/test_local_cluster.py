"""The local cluster sentinel_cube's commands start: worker memory settings."""

from __future__ import annotations

import os
import sys

import dask
import pytest

distributed = pytest.importorskip("distributed")

from sentinel_cube._local_cluster import WORKER_MALLOC, local_cluster  # noqa: E402

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc malloc settings"
)


def _faults_of_large_buffers() -> int:
    """Page faults of 200 buffers of 1 MiB, each written then freed, with a small
    long-lived block allocated after each (so a freed buffer is not at the heap's top,
    as in a busy worker)."""
    import resource

    import numpy as np

    kept = []
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):
        buffer = np.empty(2**20, np.uint8)
        buffer[::4096] = 1
        kept.append(np.empty(2**14, np.uint8))
        del buffer
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _worker_state() -> tuple[dict[str, str | None], int]:
    names = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    return {n: os.environ.get(n) for n in names}, _faults_of_large_buffers()


def _run(cluster) -> tuple[dict[str, str | None], int]:
    with cluster, distributed.Client(cluster) as client:
        (result,) = client.run(_worker_state).values()
    return result


def test_workers_keep_large_buffers_mapped_next_to_dasks_trim_threshold():
    """Workers of :func:`local_cluster` get glibc's mmap threshold at 32 MiB beside
    dask's own trim threshold, and reuse freed 1 MiB buffers instead of faulting in
    fresh pages for each (dask's default workers: 256 faults per buffer); the
    caller's dask configuration and environment are unchanged."""
    before = dask.config.get("distributed.nanny.pre-spawn-environ")
    assert "MALLOC_MMAP_THRESHOLD_" not in os.environ
    options = {"n_workers": 1, "threads_per_worker": 1, "processes": True,
               "dashboard_address": None}  # fmt: skip
    env, faults = _run(local_cluster(**options))
    assert env["MALLOC_MMAP_THRESHOLD_"] == str(WORKER_MALLOC["MALLOC_MMAP_THRESHOLD_"])
    assert env["MALLOC_TRIM_THRESHOLD_"] == str(before["MALLOC_TRIM_THRESHOLD_"])
    assert dask.config.get("distributed.nanny.pre-spawn-environ") == before
    assert "MALLOC_MMAP_THRESHOLD_" not in os.environ
    plain_env, plain_faults = _run(distributed.LocalCluster(**options))
    assert plain_env["MALLOC_MMAP_THRESHOLD_"] is None
    assert plain_faults >= 200 * 256 * 0.9  # every buffer mapped afresh
    assert faults < plain_faults / 10
