"""``sentinel-cube demo``: the pipeline, offline, on a generated Budapest-area archive."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from shapely.geometry import Polygon, mapping

from . import indices
from ._summary import metadata_summary, products_table, write_products
from .catalog import LocalCatalog
from .cube import open_cube
from .export import to_png
from .ops import aggregate, clip, stretch
from .store import open_zarr, to_zarr
from .testing import BUDAPEST_TILES, make_archive

__all__ = ["DEMO_AOI", "DEMO_DATES", "run_demo"]

#: A rough outline of central Budapest drawn for the demo (lon, lat).
DEMO_AOI = Polygon(
    [
        (18.98, 47.47),
        (19.01, 47.43),
        (19.08, 47.42),
        (19.15, 47.45),
        (19.17, 47.50),
        (19.14, 47.56),
        (19.07, 47.58),
        (19.01, 47.56),
        (18.98, 47.47),
    ]
)

#: Bands of the demo cube.
DEMO_BANDS = ("B02", "B03", "B04", "B08")

#: Acquisition days of the demo archive (relative orbit 79, summer 2023).
DEMO_DATES = (
    "2023-06-06",
    "2023-06-16",
    "2023-06-26",
    "2023-07-06",
    "2023-07-16",
    "2023-07-31",
    "2023-08-10",
    "2023-08-20",
    "2023-09-04",
)


def run_demo(out: Path, scale: int = 30, echo: Callable[[str], None] = print) -> dict[str, Path]:
    """The offline pipeline: generate, search, summarise, cube, Zarr, clip, RGB, monthly.

    Parameters
    ----------
    out
        Output folder (created); the archive goes to ``out/archive``.
    scale
        Pixel-size multiplier of the generated tiles (1 = full size; see
        :func:`sentinel_cube.testing.make_archive`).
    echo
        Where progress lines go.

    Returns
    -------
    dict
        Paths of the outputs by name.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    archive = out / "archive"
    outputs: dict[str, Path] = {"archive": archive}

    started = time.perf_counter()
    echo(
        f"1. generating {len(BUDAPEST_TILES)} tiles x {len(DEMO_DATES)} dates of L2A products "
        f"(tiles {', '.join(BUDAPEST_TILES)}, scale 1/{scale}) in {archive}"
    )
    paths = make_archive(
        archive, tiles=BUDAPEST_TILES, dates=DEMO_DATES, levels=("L2A",), scale=scale
    )
    echo(f"   {len(paths)} products written in {time.perf_counter() - started:.1f} s")

    aoi_path = out / "aoi.geojson"
    aoi_path.write_text(
        json.dumps(
            {
                "type": "Feature",
                "properties": {"name": "Budapest (demo)"},
                "geometry": mapping(DEMO_AOI),
            }
        )
    )
    outputs["aoi"] = aoi_path
    echo(f"2. area of interest: {aoi_path}")

    step = time.perf_counter()
    catalog = LocalCatalog(archive, cache_dir=out / ".cache")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        products = catalog.search(
            aoi_path, date=(DEMO_DATES[0], DEMO_DATES[-1]), producttype="S2MSI2A"
        )
    for warning in caught:
        echo(f"   warning: {warning.message}")
    echo(
        f"3. searched the local catalogue: {len(products)} products intersect the AOI "
        f"({time.perf_counter() - step:.2f} s)"
    )
    echo(products_table(products))

    echo("4. metadata summary")
    echo(metadata_summary(products))
    for suffix in ("geojson", "csv"):
        path = out / f"products.{suffix}"
        write_products(products, str(path))
        outputs[f"products.{suffix}"] = path

    step = time.perf_counter()
    cube = open_cube(products, bands=DEMO_BANDS, resolution=10 * scale, aoi=DEMO_AOI)
    echo(
        f"5. lazy cube over the AOI: {cube.sizes['time']} time steps x {cube.sizes['band']} bands"
        f" x {cube.sizes['y']} x {cube.sizes['x']} px at {10 * scale} m, {cube.rio.crs}, "
        f"{cube.data.npartitions} chunks (planned in {time.perf_counter() - step:.2f} s, "
        "no pixel read)"
    )
    store = out / "budapest.zarr"
    report = to_zarr(cube, store, mode="w", progress=False)
    outputs["cube"] = store
    echo(
        f"6. wrote the cube to Zarr: {len(report.written)} time steps, "
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
    echo(f"7. clipped to the AOI and wrote a 2-98 % stretched true-colour picture of the "
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
        "8. monthly median of the cloud-masked scenes with cloud cover < 50 %: "
        + ", ".join(
            f"{m}: {n} scenes, mean NDVI {v:.2f}"
            for m, n, v in zip(months, monthly.n_scenes.values, ndvi, strict=True)
        )
        + f" ({time.perf_counter() - step:.1f} s) -> {monthly_store}"
    )

    echo(f"done in {time.perf_counter() - started:.1f} s; outputs:")
    for name, path in outputs.items():
        echo(f"  {name:<16} {path}")
    return outputs
