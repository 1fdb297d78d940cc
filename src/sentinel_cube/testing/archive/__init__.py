"""The generator of synthetic Sentinel-2 archives (see :mod:`sentinel_cube.testing`).

:mod:`._spec` (what to write: :class:`ProductSpec`, :func:`default_specs`),
:mod:`._scene` (the model that fixes every pixel, on the integer noise of
:mod:`._noise`), :mod:`._rasters` (band JP2s),
:mod:`._metadata`, :mod:`._percentages` and :mod:`._manifest` (the XML),
:mod:`._archive` (products and archives on disk, folders or zips),
:mod:`._break` (damaged products) and :mod:`._demo_archive` (the demo's archive).
"""

from ._archive import make_archive, make_product
from ._break import BREAK_MODES, break_product
from ._demo_archive import DEMO_AOI, DEMO_DATES, DEMO_EDGE_DATES, demo_specs
from ._percentages import SCL_PERCENTAGE_ELEMENTS, scl_percentages
from ._scene import (
    DEFAULT_CLOUD_FRACTIONS,
    SwathEdge,
    cloud_fraction_for,
    expected_dn,
    reflectance,
    scene_class,
)
from ._spec import (
    ALLOWED_SCALES,
    BUDAPEST_TILES,
    DEFAULT_DATES,
    ZONE_BOUNDARY_TILES,
    ProductSpec,
    baseline_for,
    default_specs,
    platform_for,
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
