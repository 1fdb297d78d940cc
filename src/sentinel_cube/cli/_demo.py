"""``sentinel-cube demo``: the whole pipeline, offline, on a generated Budapest-area archive.

The products are served by a loopback stand-in of the Copernicus Data Space
(:class:`sentinel_cube.testing.CDSEServer`), so search, metadata enrichment, login
and band-only download run through the same :class:`sentinel_cube.CDSECatalog`
code as against the real service. ``--s3`` adds the cube stage against a loopback
S3 server (:mod:`._demo_s3`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
from shapely.geometry import mapping

from .. import indices
from ..analysis import coverage_summary
from ..catalog import CDSECatalog, coverage
from ..cube import open_cube
from ..exceptions import SentinelCubeError
from ..export import to_png
from ..ops import aggregate, clip, stretch
from ..report import metadata_summary, products_table, write_products, write_report
from ..store import open_zarr, to_zarr
from ._demo_s3 import run_s3_stage

__all__ = ["DEMO_BANDS", "FULL_COVERAGE", "demo_command", "run_demo"]

#: Bands of the demo cube.
DEMO_BANDS = ("B02", "B03", "B04", "B08")

#: Products covering at least this share of the AOI are kept (the tutorial's filter).
FULL_COVERAGE = 0.99


def run_demo(
    out: Path, scale: int = 10, echo: Callable[[str], None] = print, *, s3: bool = False
) -> dict[str, Path]:
    """The offline pipeline: generate, search, coverage, download, cube, clip, RGB, monthly, report.

    Parameters
    ----------
    out
        Output folder (created): ``hub/`` holds the served zips, ``downloads/`` the
        partial products fetched from the loopback catalogue.
    scale
        Pixel-size multiplier of the generated tiles (1 = full size; see
        :func:`sentinel_cube.testing.make_archive`).
    echo
        Where progress lines go.
    s3
        After the demo, run its cube stage again against a loopback S3 server (moto, extra
        ``demo-s3``): upload the downloaded products, open the cube from their
        ``s3://`` URLs (read in place), write it to ``s3://eodata-demo/budapest.zarr``,
        reopen it with :func:`~sentinel_cube.open_zarr`, check it equals the local store
        and that a second :func:`~sentinel_cube.to_zarr` writes nothing. The server and
        its store last for that stage only; its endpoint is printed, never its keys.

    Returns
    -------
    dict
        Paths of the outputs by name.

    Raises
    ------
    MissingExtraError
        With ``s3=True`` when moto is not installed (before anything runs).
    """
    # the generator and the loopback servers load only when the demo runs
    from ..testing import (
        BUDAPEST_TILES,
        DEMO_AOI,
        DEMO_DATES,
        CDSEServer,
        S3Server,
        demo_specs,
        make_archive,
    )

    s3_server = S3Server() if s3 else None  # without moto: MissingExtraError, at once
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hub = out / "hub"
    outputs: dict[str, Path] = {}
    started = time.perf_counter()
    specs = demo_specs()
    echo(
        f"1. generating {len(specs)} zipped L2A products as a hub would deliver them "
        f"(tiles {', '.join(BUDAPEST_TILES)}, orbits 79 and 36, scale 1/{scale}) in {hub}"
    )
    zips = make_archive(hub, specs, scale=scale, zipped=True)
    echo(f"   {len(zips)} products written in {time.perf_counter() - started:.1f} s")

    aoi_path = out / "aoi.geojson"
    aoi_path.write_text(json.dumps({"type": "Feature", "properties": {"name": "Budapest (demo)"},
                                    "geometry": mapping(DEMO_AOI)}))  # fmt: skip
    outputs["aoi"] = aoi_path
    echo(f"2. area of interest: {aoi_path}")

    with CDSEServer(zips) as server:
        (user, password), *_ = server.users.items()
        catalog = CDSECatalog(user, password, **server.catalog_kwargs)
        step = time.perf_counter()
        found = catalog.search(aoi_path, date=(DEMO_DATES[0], DEMO_DATES[-1]),
                               producttype="S2MSI2A", enrich=True)  # fmt: skip
        echo(
            f"3. searched a loopback Copernicus Data Space at {server.url} (the real "
            f"CDSECatalog client): {len(found)} products intersect the AOI; their MTD files "
            f"filled the land-cover percentages ({time.perf_counter() - step:.2f} s)"
        )
        found = coverage(found, aoi_path)
        products = found[found.aoi_fraction >= FULL_COVERAGE].reset_index(drop=True)
        echo(f"4. coverage of the AOI by tile and orbit; kept the {len(products)} products "
             f"covering at least {FULL_COVERAGE:.0%} of it")  # fmt: skip
        echo(coverage_summary(found).round(2).to_string())
        if products.empty:
            raise SentinelCubeError("no product covers the demo AOI: the archive is broken")
        echo(products_table(products))
        echo(metadata_summary(products))
        for suffix in ("geojson", "csv"):
            path = out / f"products.{suffix}"
            write_products(products, str(path))
            outputs[f"products.{suffix}"] = path

        step = time.perf_counter()
        downloads = out / "downloads"
        result = catalog.download(products, downloads, bands=[*DEMO_BANDS, "SCL"], progress=False)
        if not result.ok:
            raise SentinelCubeError(f"demo download failed: {result}")
        paths = [*result.downloaded.values(), *result.skipped.values()]
        size = sum(f.stat().st_size for p in paths for f in Path(p).rglob("*") if f.is_file())
        outputs["downloads"] = downloads
        echo(f"5. downloaded only bands {', '.join(DEMO_BANDS)} and SCL plus metadata of "
             f"{len(paths)} products as partial .SAFE folders: {size / 1e6:.1f} MB in "
             f"{time.perf_counter() - step:.1f} s -> {downloads}")  # fmt: skip

    step = time.perf_counter()
    cube_args = {"bands": DEMO_BANDS, "resolution": 10 * scale, "aoi": DEMO_AOI}
    cube = open_cube(sorted(paths), **cube_args)
    echo(
        f"6. lazy cube over the AOI: {cube.sizes['time']} time steps x {cube.sizes['band']} bands"
        f" x {cube.sizes['y']} x {cube.sizes['x']} px at {10 * scale} m, {cube.rio.crs}, "
        f"{cube.data.npartitions} chunks (planned in {time.perf_counter() - step:.2f} s, "
        "no pixel read)"
    )
    store = out / "budapest.zarr"
    report = to_zarr(cube, store, mode="w", progress=False)
    outputs["cube"] = store
    echo(
        f"7. wrote the cube to Zarr: {len(report.written)} time steps, "
        f"{report.bytes_written / 1e6:.2f} MB in {report.seconds:.1f} s "
        f"({report.mpix_per_s:.1f} MPix/s); open it with sentinel_cube.open_zarr({str(store)!r})"
    )

    step = time.perf_counter()
    stored = open_zarr(store)
    clipped = clip(stored, DEMO_AOI)
    clearest = int(np.argmin(clipped.cloudcoverpercentage.values))
    rgb = stretch(clipped.isel(time=[clearest]).sel(band=["B04", "B03", "B02"]), (2, 98))
    png = to_png(rgb.isel(time=0), out / "budapest_rgb.png")
    outputs["rgb"] = png
    day = np.datetime_as_string(clipped.time.values[clearest], unit="D")
    echo(f"8. clipped to the AOI and wrote a 2-98 % stretched true-colour picture of the "
         f"clearest day ({day}, cloud {float(clipped.cloudcoverpercentage[clearest]):.1f} %): "
         f"{png}")  # fmt: skip
    monthly = aggregate(clipped, freq="MS", how="median", mask="scl",
                        where=clipped.cloudcoverpercentage < 50)  # fmt: skip
    monthly_store = out / "budapest_monthly.zarr"
    to_zarr(monthly, monthly_store, mode="w", progress=False)
    outputs["monthly"] = monthly_store
    ndvi = indices.ndvi(monthly).mean(("y", "x")).values
    months = [np.datetime_as_string(t, unit="M") for t in monthly.time.values]
    echo(
        "9. monthly median of the cloud-masked scenes with cloud cover < 50 %: "
        + ", ".join(
            f"{m}: {n} scenes, mean NDVI {v:.2f}"
            for m, n, v in zip(months, monthly.n_scenes.values, ndvi, strict=True)
        )
        + f" ({time.perf_counter() - step:.1f} s) -> {monthly_store}"
    )

    step = time.perf_counter()
    pages = write_report(found, aoi_path, out / "report", cube=clipped,
                         title="Sentinel-2 over Budapest (demo)")  # fmt: skip
    outputs["report"] = pages["index"]
    echo(f"10. HTML report of the {len(found)} products found and of the cube "
         f"({len(pages)} pages, {time.perf_counter() - step:.1f} s): {pages['index']}")  # fmt: skip
    if s3_server is not None:
        run_s3_stage(s3_server, sorted(paths), store, cube_args, echo)

    echo(f"done in {time.perf_counter() - started:.1f} s; outputs:")
    for name, path in outputs.items():
        echo(f"  {name:<16} {path}")
    return outputs


@click.command("demo")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("sentinel-cube-demo"),
    show_default=True,
    help="Folder for the generated archive and the outputs.",
)
@click.option(
    "--scale",
    type=int,
    default=10,
    show_default=True,
    help="Pixel-size multiplier of the generated tiles (1 = full 10980 px tiles).",
)
@click.option(
    "--s3",
    is_flag=True,
    help="After the demo, run its cube stage again against a local S3 server (moto on "
    "127.0.0.1): upload the downloaded products, build the cube from their s3:// URLs into a "
    "Zarr store on S3, compare it with the local store, rerun (writes nothing). Needs "
    "pip install 'sentinel-cube[demo-s3]'.",
)
def demo_command(out: Path, scale: int, s3: bool) -> None:
    """Run the pipeline offline on a generated Budapest-area archive."""
    try:
        run_demo(out, scale=scale, echo=click.echo, s3=s3)
    except (SentinelCubeError, ValueError) as error:
        raise click.ClickException(str(error)) from error
