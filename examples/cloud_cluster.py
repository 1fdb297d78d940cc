"""Products on object storage into a store on object storage, on a cluster with no shared disk.

Nothing touches a local disk: the products are read in place on S3 (any
S3-compatible service, or CDSE's ``eodata`` bucket), the cube is written to an
``s3://`` store, and the workers (dask-gateway, Kubernetes, Coiled, an existing
scheduler, or a ``LocalCluster`` of process workers as the fallback) take their S3
keys from their own environment: keys never travel in the task graph.

Run::

    # any S3-compatible service (AWS, MinIO...): the usual AWS variables
    export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_ENDPOINT_URL=https://...
    python examples/cloud_cluster.py --products s3://my-bucket/archive \\
        --store s3://my-bucket/cubes/budapest.zarr --cluster local --workers 4

    # the Copernicus archive in place: search CDSE, read from its S3, write to your bucket
    export CDSE_S3_ACCESS_KEY=... CDSE_S3_SECRET_KEY=...
    python examples/cloud_cluster.py --products cdse --aoi budapest.geojson \\
        --start 2023-06-01 --end 2023-08-31 --store s3://my-bucket/cubes/budapest.zarr \\
        --store-endpoint https://s3.eu-central-1.amazonaws.com --cluster gateway

``--cluster`` is ``local`` (default), ``gateway`` (``dask-gateway``), ``kubernetes``
(``dask-kubernetes``' operator), ``coiled``, or a scheduler address
(``tcp://10.0.0.5:8786``). Rerunning the same command resumes an interrupted ingest
and writes nothing once the store holds every step.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from dask.distributed import Client

import sentinel_cube as sc

#: The variables a worker needs to reach the products and the store.
WORKER_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "CDSE_S3_ACCESS_KEY", "CDSE_S3_SECRET_KEY",
    "CDSE_S3_ENDPOINT",
)  # fmt: skip


def worker_environment() -> dict[str, str]:
    """The S3 settings of this shell, to hand to the workers when they start."""
    return {name: os.environ[name] for name in WORKER_VARIABLES if os.environ.get(name)}


def connect(kind: str, workers: int) -> tuple[Client, Any]:
    """A client of the cluster ``kind``; the cluster object (or None) to close at the end.

    Each managed cluster starts its workers with :func:`worker_environment`: the
    keys reach the workers through their environment, set once when they start,
    never through the tasks.
    """
    env = worker_environment()
    if kind == "gateway":  # a JupyterHub / Pangeo deployment
        from dask_gateway import Gateway

        gateway = Gateway()
        options = gateway.cluster_options()
        options.environment = env  # most deployments expose this option
        cluster = gateway.new_cluster(options)
        cluster.scale(workers)
        return cluster.get_client(), cluster
    if kind == "kubernetes":  # the dask-kubernetes operator
        from dask_kubernetes.operator import KubeCluster

        cluster = KubeCluster(name="sentinel-cube", n_workers=workers, env=env)
        return Client(cluster), cluster
    if kind == "coiled":
        import coiled

        cluster = coiled.Cluster(n_workers=workers, environ=env)
        return Client(cluster), cluster
    if "://" in kind:  # an existing scheduler: its workers were started with the keys
        return Client(kind), None
    from dask.distributed import LocalCluster

    # process workers inherit this shell's environment
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
    return Client(cluster), cluster


def find_products(args: argparse.Namespace) -> Any:
    """The products table: an S3 prefix listed in place, or a CDSE search read from its S3."""
    aoi = sc.read_aoi(args.aoi) if args.aoi else None
    if args.products == "cdse":
        if aoi is None or not args.start or not args.end:
            raise SystemExit("--products cdse needs --aoi, --start and --end")
        return sc.CDSECatalog().search(aoi, date=(args.start, args.end), producttype="S2MSI2A")
    return sc.LocalCatalog(args.products).search(aoi)


def main(argv: list[str] | None = None) -> sc.WriteReport:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", required=True, help="s3:// prefix of products, or 'cdse'")
    parser.add_argument("--store", required=True, help="s3:// URL of the cube store")
    parser.add_argument("--store-endpoint", default=None,
                        help="endpoint of the store's service, if not the products'")  # fmt: skip
    parser.add_argument("--aoi", default=None, help="AOI file (GeoJSON, shapefile...)")
    parser.add_argument("--start", default=None)
    parser.add_argument("--end", default=None)
    parser.add_argument("--bands", default="B02,B03,B04,B08,SCL")
    parser.add_argument("--resolution", type=float, default=None)
    parser.add_argument("--cluster", default="local")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    products = find_products(args)
    print(f"{len(products)} products found")
    started = time.perf_counter()
    client, cluster = connect(args.cluster, args.workers)
    try:
        print(f"cluster: {args.cluster}, dashboard {client.dashboard_link}")
        aoi = sc.read_aoi(args.aoi) if args.aoi else None
        cube = sc.open_cube(products, bands=args.bands.split(","), aoi=aoi,
                            resolution=args.resolution)  # fmt: skip
        print(f"planned {dict(cube.sizes)}: {cube.data.npartitions} chunks, nothing read")
        options = {"endpoint_url": args.store_endpoint} if args.store_endpoint else None
        report = sc.to_zarr(cube, args.store, storage_options=options)
        print(
            f"{report.store}: {len(report.written)} steps written, {len(report.skipped)} "
            f"already there, {report.bytes_written / 1e6:.1f} MB, {report.mpix_per_s:.1f} MPix/s"
        )
        stored = sc.open_zarr(args.store, storage_options=options)
        print(f"the store holds {stored.sizes['time']} steps of {list(stored.band.values)}")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print(f"done in {time.perf_counter() - started:.0f} s")
    return report


if __name__ == "__main__":
    main()
