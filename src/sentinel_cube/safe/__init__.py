"""Read Sentinel-2 ``.SAFE`` products (folders or zips) without extracting them."""

from ._model import BandFile, Product
from ._reader import read_product

__all__ = ["BandFile", "Product", "read_product"]
