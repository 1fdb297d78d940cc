"""The classic Sentinel-2 Budapest tutorial, every step replayed with sentinel_cube.

The tutorial this toolkit grew from queried a hub with sentinelsat, studied the
products' metadata with pandas, folium and matplotlib, kept the products covering
the whole city, downloaded them, read bands with rasterio, masked them with the
city boundary and stretched an RGB picture. Here each step is one or two calls:

1. query a catalogue for an AOI and dates            ``CDSECatalog.search``
2. the metadata table                                the products GeoDataFrame
3. the tile map over the city                        ``plot.footprints``
4. keep the products covering the whole AOI          ``coverage``
5. acquisitions per day, week and month              ``analysis.acquisitions``
6. vegetation/water/snow/cloud series, correlation   ``analysis.landcover``, ``.correlation``
7. download (only the bands needed)                  ``CDSECatalog.download(bands=...)``
8. read bands, clip to the AOI, mask clouds          ``open_cube``, ``clip``, ``mask_clouds``
9. RGB with a 2-98 % stretch                         ``stretch``, ``to_png``

It runs offline: the products come from a generated Budapest-area archive served
by a loopback stand-in of the Copernicus Data Space, through the very
``CDSECatalog`` client that talks to the real service (see ``cdse_live.py`` for
that). Run::

    python examples/tutorial_budapest.py OUT_DIR [--scale 30] [--aoi budapest.geojson]

``--aoi`` takes any boundary file (e.g. the city's administrative boundary); the
default is a rough outline of central Budapest. Pictures go to ``OUT_DIR`` (PNG
and standalone HTML); the README shows the PNGs.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import sentinel_cube as sc
from sentinel_cube.testing import DEMO_AOI, CDSEServer, demo_specs, make_archive

BANDS = ["B02", "B03", "B04", "B08"]


def main(out: Path, scale: int = 30, aoi_file: Path | None = None) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    aoi = sc.read_aoi(aoi_file) if aoi_file else DEMO_AOI
    pictures: dict[str, Path] = {}

    def save(view, name: str, png: bool = True) -> None:
        pictures[name] = sc.plot.save(view, out / f"{name}.html")
        if png:
            pictures[f"{name}.png"] = sc.plot.save(view, out / f"{name}.png")

    zips = make_archive(out / "hub", demo_specs(), scale=scale, zipped=True)
    with CDSEServer(zips) as server:
        (user, password), *_ = server.users.items()
        catalog = sc.CDSECatalog(user, password, **server.catalog_kwargs)

        # 1. query: Sentinel-2 L2A over the AOI, summer 2023 (enrich=True reads each
        #    product's small MTD file to fill the vegetation/water/snow percentages)
        products = catalog.search(aoi, date=("2023-06-01", "2023-09-30"),
                                  producttype="S2MSI2A", enrich=True)  # fmt: skip

        # 2. the metadata table
        print(f"{len(products)} products found")
        print(products[["title", "tileid", "relativeorbitnumber", "beginposition",
                        "cloudcoverpercentage", "vegetationpercentage", "waterpercentage",
                        "snowicepercentage"]].to_string(index=False))  # fmt: skip

        # 3. the tile map: footprints over the AOI, coloured by the share of the AOI covered
        products = sc.coverage(products, aoi)
        save(sc.plot.footprints(products, aoi, color="aoi_fraction"), "footprints")
        print(sc.analysis.coverage_summary(products).round(2).to_string())

        # 4. keep the products that cover the whole AOI
        full = products[products.aoi_fraction >= 0.99].reset_index(drop=True)
        print(f"{len(full)} of {len(products)} products cover the whole AOI")

        # 5. acquisitions per day / week / month (empty periods count as zero)
        for freq in ("D", "W", "MS"):
            counts = sc.analysis.acquisitions(full, freq)
            print(f"acquisitions per {freq}: {counts['days'].tolist()}")
        save(sc.plot.acquisitions_plot(products, "W"), "acquisitions")

        # 6. land-cover percentages over time, and how they correlate
        print(sc.analysis.landcover(full, "MS").round(1).to_string())
        print(sc.analysis.correlation(full).round(2).to_string())
        save(sc.plot.landcover_plot(full, "W"), "landcover")
        save(sc.plot.correlation_plot(full), "correlation")

        # 7. download only the bands the analysis needs (plus metadata): partial SAFEs
        result = catalog.download(full, out / "downloads", bands=[*BANDS, "SCL"], progress=False)
        print(result)
        paths = sorted([*result.downloaded.values(), *result.skipped.values()])

    # 8. read the bands (lazily), clip to the AOI, mask clouds with the SCL band
    cube = sc.open_cube(paths, bands=BANDS, resolution=10 * scale, aoi=aoi)
    clear = sc.mask_clouds(sc.clip(cube, aoi))
    print(clear)

    # 9. true colour of the clearest day, one 2-98 % stretch; NDVI of every day
    clearest = int(clear.cloudcoverpercentage.argmin("time"))
    rgb = sc.stretch(clear.isel(time=[clearest]).sel(band=["B04", "B03", "B02"]), (2, 98))
    low, high = rgb.stretch_low.values.round(4), rgb.stretch_high.values.round(4)
    print(f"2-98 % stretch limits (reflectance) of B04, B03, B02: {low} to {high}")
    pictures["rgb.png"] = sc.to_png(rgb.isel(time=0), out / "rgb.png")
    ndvi = sc.indices.ndvi(clear).mean(("y", "x")).compute()
    for day, value in zip(ndvi.time.values, ndvi.values, strict=True):
        print(f"{str(day)[:10]}  mean NDVI {value:.3f}")
    save(sc.plot.cube_view(clear, ["B04", "B03", "B02"]), "cube", png=False)

    for name, path in pictures.items():
        print(f"{name:<18} {path}")
    return pictures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=None, help="output folder")
    parser.add_argument("--scale", type=int, default=30, help="pixel-size multiplier (1 = full)")
    parser.add_argument("--aoi", type=Path, default=None, help="AOI file (default: demo outline)")
    args = parser.parse_args()
    main(args.out or Path(tempfile.mkdtemp(prefix="sc-tutorial-")), args.scale, args.aoi)
