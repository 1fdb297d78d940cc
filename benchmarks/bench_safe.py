"""Metadata benchmarks: reading one product, listing a local archive (cold and warm cache)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sentinel_cube import LocalCatalog, read_product

from ._data import bench_dir, catalog_archive, product_archive


class ReadProduct:
    """``read_product`` of one complete L2A product (all bands, 10/20/60 m): folder vs zip.

    Reads the product and tile XML and lists the band files; zips are read in place.
    """

    params = [["folder", "zip"]]
    param_names = ["layout"]
    timeout = 600  # the first run may generate the product

    def setup(self, layout: str) -> None:
        self.path = product_archive(zipped=layout == "zip").paths[0]

    def time_read_product(self, layout: str) -> None:
        read_product(self.path, require_bands=None)

    def track_n_band_files(self, layout: str) -> int:
        """Band files the reader found (sanity check of what was timed)."""
        return len(read_product(self.path, require_bands=None).bands)

    track_n_band_files.unit = "files"  # type: ignore[attr-defined]


class CatalogSearch:
    """``LocalCatalog.search()`` over 40 products (2 tiles x 20 dates, band B04 only).

    *Cold*: an empty cache folder, so every product's metadata is parsed (and the
    cache is written). *Warm*: the cache is filled, so the scan only stats files.
    """

    timeout = 600  # the first run may generate the archive
    n_products = 40

    def setup(self) -> None:
        archive = catalog_archive(n_dates=self.n_products // 2)
        self.root = archive.root
        bench_dir().mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="catalog-caches-", dir=bench_dir()))
        self.warm_cache = self.tmp / "warm"
        found = self._search(self.warm_cache)  # fills the warm cache
        if len(found) != self.n_products:
            raise RuntimeError(f"expected {self.n_products} products, found {len(found)}")

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _search(self, cache_dir: Path):
        return LocalCatalog(self.root, require_bands=None, cache_dir=cache_dir).search()

    def time_search_cold(self) -> None:
        # a new, empty cache folder for every call
        self._search(Path(tempfile.mkdtemp(prefix="cold-", dir=self.tmp)))

    def time_search_warm(self) -> None:
        self._search(self.warm_cache)

    def time_search_warm_filtered(self) -> None:
        """Warm scan plus the usual filters (date range, tile, cloud cover)."""
        LocalCatalog(self.root, require_bands=None, cache_dir=self.warm_cache).search(
            date=("2023-06-10", "2023-08-10"), tileid="34TCT", cloudcoverpercentage=(0, 50)
        )

    def track_n_products(self) -> int:
        return len(self._search(self.warm_cache))

    track_n_products.unit = "products"  # type: ignore[attr-defined]
