"""``sentinel-cube bench``: measure ingest and analysis on this machine or a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..exceptions import SentinelCubeError
from ._options import PathOrURL, _ManyValues, _split, parse_aoi

__all__ = ["bench_command"]

#: Options that describe the generated archive: not with --products.
_ARCHIVE_OPTIONS = ("tiles", "dates", "scale", "archive_dir")


@click.command("bench")
@click.option(
    "--products", "products", multiple=True, type=PathOrURL(exists=True),
    help="Products to ingest, as 'build' takes them: a folder or s3:// prefix of .SAFE/.zip "
    "products, a products table, or products (repeat the option for several). Default: a "
    "generated archive (--tiles, --dates, --scale).",
)  # fmt: skip
@click.option("--aoi", type=str, default=None, help="AOI file, WKT or 'minx,miny,maxx,maxy'.")
@click.option(
    "--bands", cls=_ManyValues, default="B02 B03 B04 B08", show_default=True,
    help="Bands of the cube, space or comma separated.",
)  # fmt: skip
@click.option(
    "--resolution", type=float, default=None,
    help="Pixel size (m). Default: 10, or the 10 m bands' pixel size of a generated archive.",
)  # fmt: skip
@click.option(
    "--chunks", type=int, default=None, help="Chunk side in pixels (default: open_cube's)."
)
@click.option(
    "--tiles", cls=_ManyValues, default="34TCT 34TDT", show_default=True,
    help="Generated archive: MGRS tiles.",
)  # fmt: skip
@click.option("--dates", type=int, default=3, show_default=True,
              help="Generated archive: acquisition dates (every 5 days).")  # fmt: skip
@click.option(
    "--scale", type=int, default=10, show_default=True,
    help="Generated archive: pixel-size multiplier (1 = full 10980 px tiles, 61 = tiny; a "
    "divisor of 1830).",
)  # fmt: skip
@click.option(
    "--archive-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Generated archive: its folder, reused when the same archive is asked again "
    "(default: OUT/archive).",
)  # fmt: skip
@click.option(
    "--store", type=PathOrURL(), default=None,
    help="Zarr store the ingest writes: a folder or an s3:// URL (keys from AWS_* variables, "
    "here and on the workers). Replaced at each ingest. Default: OUT/bench.zarr.",
)  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Allow replacing an existing --store.")
@click.option(
    "--scheduler", type=str, default=None,
    help="Address of a running dask scheduler (tcp://host:8786). Default: a local cluster "
    "of process workers.",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Workers to use, and the top of the scaling curve. Default: the CPU count (local "
    "cluster), or every worker of --scheduler.",
)  # fmt: skip
@click.option(
    "--threads-per-worker", type=click.IntRange(min=1), default=1, show_default=True,
    help="Threads of each local worker (not with --scheduler).",
)  # fmt: skip
@click.option(
    "--connect-timeout", type=float, default=30.0, show_default=True,
    help="Seconds to wait for --scheduler and its first worker.",
)  # fmt: skip
@click.option(
    "--rounds", type=click.IntRange(min=1), default=1, show_default=True,
    help="Rounds of the decode limit and of each ingest; medians are reported.",
)  # fmt: skip
@click.option(
    "--skip", cls=_ManyValues, default="",
    help="Phases to leave out: decode, clip, stretch, aggregate, scaling.",
)  # fmt: skip
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path),
    default=Path("sentinel-cube-bench"), show_default=True,
    help="Folder of bench.json, bench.html, the default store and the generated archive.",
)  # fmt: skip
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bars on stderr.")  # fmt: skip
@click.pass_context
def bench_command(ctx: click.Context, products, aoi, bands, resolution, chunks, tiles, dates,
                  scale, archive_dir, store, overwrite, scheduler, workers, threads_per_worker,
                  connect_timeout, rounds, skip, out, progress) -> None:  # fmt: skip
    """Benchmark ingest and analysis on this machine or a dask cluster.

    \b
    In one run, on the same workers:
      decode limit  raw GDAL decode of exactly the JPEG 2000 windows the cube's
                    chunks read (uint16, no conversion, mosaic or write)
      plan          open_cube time (metadata only) and its dask tasks
      ingest        open_cube + to_zarr into --store, MPix/s and its ratio to the
                    decode limit (the key figure)
      clip, stretch, aggregate   from the store (monthly median)
      scaling       the ingest again on the first 1, 2, 4 ... workers
    with the peak memory of each worker in each phase.

    It prints a table and writes OUT/bench.json (machine, versions, options, every
    measurement, the ratios) and OUT/bench.html (plots: scaling against the
    ideal and the decode limit, time and memory per phase).

    \b
    Examples:
      sentinel-cube bench --scale 10 --dates 3 --workers 2 --out bench/
      sentinel-cube bench --products archive/ --aoi budapest.geojson \\
          --scheduler tcp://10.0.0.5:8786 --store s3://bucket/bench.zarr --overwrite
    """
    from ..bench import BenchOptions, run_bench, table, write_html, write_json

    generated = not products
    if not generated:
        given = [n for n in _ARCHIVE_OPTIONS
                 if ctx.get_parameter_source(n) is not ParameterSource.DEFAULT]  # fmt: skip
        if given:
            names = ", ".join("--" + n.replace("_", "-") for n in given)
            raise click.UsageError(f"{names} describe a generated archive: not with --products")
    if scheduler and ctx.get_parameter_source("threads_per_worker") is not ParameterSource.DEFAULT:
        raise click.UsageError("--threads-per-worker is for a local cluster: not with --scheduler")
    area = parse_aoi(aoi)
    try:
        options = BenchOptions(
            out=out,
            products=None if generated else _products(products, area),
            tiles=tuple(_split(tiles)),
            dates=dates,
            scale=scale,
            archive_dir=archive_dir,
            aoi=area,
            bands=tuple(_split(bands)),
            resolution=resolution,
            chunks=chunks,
            store=store,
            overwrite=overwrite,
            scheduler=scheduler,
            workers=workers,
            threads_per_worker=threads_per_worker,
            connect_timeout=connect_timeout,
            rounds=rounds,
            skip=frozenset(_split(skip)),
        )
        report = run_bench(options, echo=click.echo, progress=progress)
    except (SentinelCubeError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo("")
    click.echo(table(report))
    json_path = write_json(report, out / "bench.json")
    html_path = write_html(report, out / "bench.html")
    click.echo(f"\nwrote {json_path} and {html_path}")


def _products(sources: tuple[Path | str, ...], aoi: Any) -> Any:
    """The products of ``--products``, those meeting the AOI; an error when none is left."""
    from ..catalog import filter_products
    from ._build import _load_products

    products = _load_products(sources)
    count = len(products)
    if aoi is not None:
        products = filter_products(products, aoi=aoi)
    if len(products) == 0:
        where = " meet the AOI" if count else " were found"
        raise SentinelCubeError(
            f"no products{where} in {', '.join(map(str, sources))}: check --products"
            + (" and --aoi" if count else " (a folder of .SAFE folders or .zip products)")
        )
    return products
