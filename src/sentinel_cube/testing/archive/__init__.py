"""The generator of synthetic Sentinel-2 archives (see :mod:`sentinel_cube.testing`).

Specs of products and archives, the scene model that fixes every pixel, the
metadata writers, the products on disk (folders or zips) and their breakage,
and the demo archive over Budapest.
"""

from ._archive import (
    ALLOWED_SCALES,
    BREAK_MODES,
    BUDAPEST_TILES,
    DEFAULT_DATES,
    ZONE_BOUNDARY_TILES,
    ProductSpec,
    baseline_for,
    break_product,
    default_specs,
    make_archive,
    make_product,
    platform_for,
)
from ._demo_archive import DEMO_AOI, DEMO_DATES, DEMO_EDGE_DATES, demo_specs
from ._metadata import SCL_PERCENTAGE_ELEMENTS, scl_percentages
from ._scene import (
    DEFAULT_CLOUD_FRACTIONS,
    SwathEdge,
    cloud_fraction_for,
    expected_dn,
    reflectance,
    scene_class,
)

__all__ = [
    "ALLOWED_SCALES",
    "BREAK_MODES",
    "BUDAPEST_TILES",
    "DEFAULT_CLOUD_FRACTIONS",
    "DEFAULT_DATES",
    "DEMO_AOI",
    "DEMO_DATES",
    "DEMO_EDGE_DATES",
    "SCL_PERCENTAGE_ELEMENTS",
    "ZONE_BOUNDARY_TILES",
    "ProductSpec",
    "SwathEdge",
    "baseline_for",
    "break_product",
    "cloud_fraction_for",
    "default_specs",
    "demo_specs",
    "expected_dn",
    "make_archive",
    "make_product",
    "platform_for",
    "reflectance",
    "scene_class",
    "scl_percentages",
]
