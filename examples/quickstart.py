"""Quick start, offline: a generated archive -> search -> lazy cube -> Zarr -> RGB picture.

Run with ``python examples/quickstart.py [OUT_DIR]``. It writes a small synthetic
Sentinel-2 archive over Budapest (two tiles, three dates), so it needs no account
and no network; swap ``LocalCatalog`` for ``CDSECatalog`` to work on real products.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import sentinel_cube as sc
from sentinel_cube.testing import BUDAPEST_TILES, default_specs, make_archive


def main(out: Path) -> None:
    archive = out / "archive"
    make_archive(archive, default_specs(tiles=BUDAPEST_TILES,
                                        dates=("2023-06-06", "2023-07-06", "2023-08-10")),
                 scale=61)  # fmt: skip
    aoi = (18.95, 47.40, 19.20, 47.60)  # a box over central Budapest (lon/lat)

    products = sc.LocalCatalog(archive).search(aoi, date=("2023-06-01", "2023-08-31"),
                                               producttype="S2MSI2A")  # fmt: skip
    print(products[["tileid", "beginposition", "cloudcoverpercentage"]])

    cube = sc.open_cube(products, bands=["B02", "B03", "B04", "B08"], resolution=610, aoi=aoi)
    print(cube)  # lazy: nothing has been read yet

    report = sc.to_zarr(cube, out / "budapest.zarr", mode="w", progress=False)
    print(f"stored {len(report.written)} time steps in {out / 'budapest.zarr'}")

    stored = sc.open_zarr(out / "budapest.zarr")
    rgb = sc.stretch(stored.sel(band=["B04", "B03", "B02"]), percentiles=(2, 98))
    picture = sc.to_png(rgb.isel(time=0), out / "rgb.png")
    print(f"true-colour picture: {picture}")
    print(f"mean NDVI per date: {sc.indices.ndvi(stored).mean(('y', 'x')).values.round(3)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="sc-")))
