"""A cube read from S3 on a dask cluster started from the command line.

A scheduler and two workers are started with the ``dask`` command line
(``tests/_cluster.py``), each in a fresh empty folder that is its ``HOME``, with the
S3 server's keys in its environment, as machines of a cluster would be. The products
are generated locally, uploaded to the S3 server (``tests/_s3.py``) and their local
copies deleted before the cluster computes: workers can only read them from S3, with
their own keys (neither the keys nor a local path are in the graph). Values are
compared with the same cube read from the local copies by the threaded scheduler.
"""

from __future__ import annotations

import os
import pickle
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import distributed
import numpy as np
import pytest
import xarray as xr

from _cluster import CliCluster, cli_cluster
from _s3 import KEY_ID, SECRET
from sentinel_cube.cube import open_cube
from sentinel_cube.store import open_zarr, to_zarr
from sentinel_cube.testing import make_archive

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name != "posix", reason="process groups and SIGKILL are POSIX"),
]

SCALE = 61  # 180 px at 10 m
#: Small chunks: about two hundred of them in a cube of 1.5 MB.
CUBE = {"bands": ["B04", "B8A", "SCL"], "resolution": 10 * SCALE, "chunks": 48}
#: Chunks to wait for before a worker is killed (of about two hundred).
KILL_AFTER = 20


@dataclass(frozen=True)
class Products:
    """Products on the S3 server whose local copies are gone, and their cube."""

    urls: list[str]
    #: the cube of the local copies, computed by the threaded scheduler before they
    #: were deleted
    reference: xr.DataArray
    #: the deleted folder the products were generated in
    generated_in: Path

    def cube(self) -> xr.DataArray:
        """The lazy cube of the S3 products (reads their metadata, in this process)."""
        return open_cube(self.urls, **CUBE)


@pytest.fixture(scope="module")
def products(s3_server, tmp_path_factory) -> Products:
    root = tmp_path_factory.mktemp("cluster-products")
    folders = make_archive(root, dates=["2023-06-01", "2023-06-11"], scale=SCALE)
    urls = [s3_server.upload(folder, "cluster") for folder in folders]
    reference = open_cube(folders, **CUBE).compute(scheduler="threads")
    shutil.rmtree(root)
    return Products(urls, reference, root)


def _assert_same(got: xr.DataArray, expected: xr.DataArray) -> None:
    """Same values (NaN where NaN), dims, dtype and coordinates, product paths aside."""
    assert got.dims == expected.dims and got.dtype == expected.dtype
    np.testing.assert_array_equal(got.values, expected.values)
    for name in ("time", "band", "y", "x", "product_id", "tileid"):
        np.testing.assert_array_equal(got[name].values, expected[name].values)


def _assert_graph_is_self_contained(cube: xr.DataArray, products: Products) -> None:
    """No local path of the products and no key in the graph the workers receive."""
    graph = pickle.dumps(dict(cube.__dask_graph__()))
    assert not products.generated_in.exists()
    assert str(products.generated_in).encode() not in graph
    assert SECRET.encode() not in graph
    assert b"/vsis3/" in graph


def _assert_isolated(cluster: CliCluster) -> None:
    """Each worker runs in its own folder, its home, with the keys of its environment."""
    homes = {str(worker.home) for worker in cluster.workers}
    assert set(cluster.client.run(os.getcwd).values()) == homes
    assert set(cluster.client.run(os.path.expanduser, "~").values()) == homes
    # os.getenv, not os.environ.get: a bound method would carry this process's environ
    assert set(cluster.client.run(os.getenv, "AWS_ACCESS_KEY_ID").values()) == {KEY_ID}
    assert set(cluster.client.run(os.getenv, "XDG_CACHE_HOME").values()) == {None}


def _busiest_worker(cluster: CliCluster) -> tuple[int, int]:
    """The index of the worker holding the most results, and how many it holds."""
    held = cluster.client.has_what()
    counts = [len(held.get(cluster.addresses[worker.name], ())) for worker in cluster.workers]
    index = max(range(len(counts)), key=counts.__getitem__)
    return index, counts[index]


def test_cube_from_s3_on_a_command_line_cluster_equals_threads(s3_env, products, tmp_path):
    cube = products.cube()
    assert cube.data.npartitions > 100
    _assert_graph_is_self_contained(cube, products)
    with cli_cluster(tmp_path, env=s3_env.env()) as cluster:
        _assert_isolated(cluster)
        start = len(s3_env.log)
        got = cube.compute()  # the cluster's client is the default scheduler
        assert len(cluster.client.scheduler_info()["workers"]) == 2
    # the metadata was read above: these are the workers' reads of pixels
    assert any(r.method == "GET" and "/IMG_DATA/" in r.path for r in s3_env.log[start:])
    _assert_same(got, products.reference)


def test_a_worker_killed_mid_compute_loses_no_chunk(s3_env, products, tmp_path):
    """A worker lost mid-compute: what it held and had to do is redone by the one left."""
    cube = products.cube()
    with cli_cluster(tmp_path, env=s3_env.env()) as cluster:
        persisted = cluster.client.persist(cube)  # results stay on the worker that made them
        futures = distributed.futures_of(persisted)
        arrived = distributed.as_completed(futures)
        for _ in range(KILL_AFTER):
            next(arrived)
        victim, lost = _busiest_worker(cluster)
        done = sum(future.done() for future in futures)
        killed = cluster.kill_worker(victim)
        got = persisted.compute()
        survivors = list(cluster.client.scheduler_info()["workers"])
    assert lost > 0 and done < len(futures), "the kill should land mid-compute"
    assert killed not in survivors and len(survivors) == 1
    _assert_same(got, products.reference)


# ------------------------------------------------------------------ S3 to S3 ingests


def _store_url(s3_env) -> str:
    bucket = f"cluster-{uuid.uuid4().hex[:12]}"  # a bucket of its own: quick listings
    s3_env.client().create_bucket(Bucket=bucket)
    return f"s3://{bucket}/cube.zarr"


def test_ingest_from_s3_to_an_s3_store_on_the_cluster(s3_env, products, tmp_path):
    url = _store_url(s3_env)
    with cli_cluster(tmp_path, env=s3_env.env()) as cluster:
        start = len(s3_env.log)
        report = to_zarr(products.cube(), url, progress=False)
        writers = _chunk_puts(s3_env.log[start:], url)
        assert len(cluster.client.scheduler_info()["workers"]) == 2
    assert len(report.written) == products.reference.sizes["time"]
    assert writers  # the workers wrote the chunks
    _assert_same(open_zarr(url).compute(), products.reference)


def test_a_worker_killed_mid_ingest_loses_no_step(s3_env, products, tmp_path):
    """Kill a worker once the first chunks are on S3: the ingest completes or resumes."""
    url = _store_url(s3_env)
    outcome: dict[str, object] = {}
    with cli_cluster(tmp_path, env=s3_env.env()) as cluster:
        start = len(s3_env.log)

        def ingest() -> None:
            try:
                outcome["report"] = to_zarr(products.cube(), url, progress=False)
            except Exception as error:  # the rerun below must then resume
                outcome["error"] = error

        writer = threading.Thread(target=ingest)
        writer.start()
        deadline = time.monotonic() + 120
        while len(_chunk_puts(s3_env.log[start:], url)) < KILL_AFTER and writer.is_alive():
            assert time.monotonic() < deadline, "no chunk was written"
            time.sleep(0.02)
        assert writer.is_alive(), "the kill should land mid-ingest"
        cluster.kill_worker(1)
        writer.join(timeout=300)
        if "error" in outcome:  # dask gave up on a task: the same call resumes
            print(f"ingest failed with the worker: {outcome['error']!r}; resuming")
            outcome["report"] = to_zarr(products.cube(), url, progress=False)
        else:
            print("ingest completed on the remaining worker")
    assert len(open_zarr(url).time) == products.reference.sizes["time"]
    _assert_same(open_zarr(url).compute(), products.reference)


def _chunk_puts(log, url: str) -> list:
    prefix = "/" + url[len("s3://") :] + "/reflectance/c/"
    return [r for r in log if r.method == "PUT" and r.path.startswith(prefix)]
