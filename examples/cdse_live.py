"""Real products from the Copernicus Data Space Ecosystem: search, download, cube, picture.

Needs a free CDSE account (https://dataspace.copernicus.eu) and network access;
it is documented here and not run by the test suite against the real service.
Credentials come from the environment (or ``~/.netrc``, machine
``identity.dataspace.copernicus.eu``) and are never printed::

    export CDSE_USERNAME=you@example.org CDSE_PASSWORD='...'
    python examples/cdse_live.py OUT_DIR --aoi budapest.geojson \\
        --start 2023-06-01 --end 2023-08-31 --max-cloud 20 --limit 4

What it does: searches Sentinel-2 L2A products over the AOI (server-side filters
on dates, cloud cover and footprint), fills vegetation/water/snow percentages
from each product's MTD file, keeps the products covering the whole AOI, prints
the metadata summary and writes an HTML report, downloads only B02, B03, B04,
B08 and SCL of the ``--limit`` clearest (about 250 MB per product instead of
~1 GB; at most 4 connections, the account's quota; interrupted downloads resume
on rerun and every file is checked against the manifest's checksum), then builds
a 10 m cloud-masked cube into Zarr and a 2-98 % stretched RGB of the clearest day.

``CDSE_CATALOGUE_URL``, ``CDSE_DOWNLOAD_URL`` and ``CDSE_TOKEN_URL`` point the
client at another deployment (the tests use them to run this script against a
loopback server).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sentinel_cube as sc

BANDS = ["B02", "B03", "B04", "B08"]


def main(
    out: Path,
    aoi_file: Path,
    start: str,
    end: str,
    max_cloud: float = 30,
    limit: int = 4,
    resolution: float = 10,
) -> int:
    out.mkdir(parents=True, exist_ok=True)
    aoi = sc.read_aoi(aoi_file)
    catalog = sc.CDSECatalog()  # CDSE_USERNAME / CDSE_PASSWORD or ~/.netrc
    products = catalog.search(aoi, date=(start, end), producttype="S2MSI2A",
                              cloudcoverpercentage=(0, max_cloud), enrich=True)  # fmt: skip
    if products.empty:
        print("no product matches: widen the dates or the cloud limit", file=sys.stderr)
        return 1
    products = sc.coverage(products, aoi)
    print(sc.analysis.coverage_summary(products).round(2).to_string())
    full = products[products.aoi_fraction >= 0.99]
    if full.empty:
        print("no single product covers the whole AOI; keeping the partial ones, the cube "
              "mosaics tiles of the same day", file=sys.stderr)  # fmt: skip
        full = products
    pages = sc.write_report(full, aoi, out / "report")
    print(f"report: {pages['index']}")

    days = full.sort_values("cloudcoverpercentage")
    chosen = full[full.beginposition.dt.floor("D").isin(
        days.beginposition.dt.floor("D").drop_duplicates().iloc[:limit]
    )]  # fmt: skip
    result = catalog.download(chosen, out / "products", bands=[*BANDS, "SCL"])
    print(result)
    if not result.ok:
        print("some downloads did not complete: run the script again to resume them",
              file=sys.stderr)  # fmt: skip
    paths = [*result.downloaded.values(), *result.skipped.values()]
    if not paths:
        return 1

    cube = sc.mask_clouds(sc.open_cube(paths, bands=BANDS, resolution=resolution, aoi=aoi))
    written = sc.to_zarr(sc.clip(cube, aoi), out / "cube.zarr")
    print(f"cube: {written.pixels / 1e6:.0f} MPix in {written.seconds:.0f} s -> {written.store}")
    stored = sc.open_zarr(out / "cube.zarr")
    clearest = int(stored.cloudcoverpercentage.argmin("time"))
    rgb = sc.stretch(stored.isel(time=[clearest]).sel(band=["B04", "B03", "B02"]), (2, 98))
    print(f"picture: {sc.to_png(rgb.isel(time=0), out / 'rgb.png')}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--aoi", type=Path, required=True, help="AOI file (GeoJSON, shapefile...)")
    parser.add_argument("--start", required=True, help="first day, e.g. 2023-06-01")
    parser.add_argument("--end", required=True, help="last day, e.g. 2023-08-31")
    parser.add_argument("--max-cloud", type=float, default=30, help="cloud cover limit, %%")
    parser.add_argument("--limit", type=int, default=4, help="clearest days to download")
    parser.add_argument("--resolution", type=float, default=10, help="cube resolution, m")
    args = parser.parse_args()
    sys.exit(main(args.out, args.aoi, args.start, args.end, args.max_cloud, args.limit,
                  args.resolution))  # fmt: skip
