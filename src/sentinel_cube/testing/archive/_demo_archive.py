"""The Budapest demo archive: what ``sentinel-cube demo`` and the examples work on."""

from __future__ import annotations

import datetime as dt

from shapely.geometry import Polygon

from ._scene import SwathEdge
from ._spec import BUDAPEST_TILES, ProductSpec, default_specs, platform_for

__all__ = ["DEMO_AOI", "DEMO_DATES", "DEMO_EDGE_DATES", "demo_specs"]

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

#: Acquisition days of relative orbit 79 (summer 2023): both Budapest tiles.
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

#: Days of the neighbouring relative orbit 36, whose swath ends across the AOI.
DEMO_EDGE_DATES = ("2023-06-19", "2023-07-19", "2023-08-18")


def demo_specs() -> list[ProductSpec]:
    """Both Budapest tiles on the 9 :data:`DEMO_DATES`, plus 3 partial passes of orbit 36.

    The orbit-36 passes (tile 34TCT only, 09:55 UTC) have their swath edge through
    the middle of :data:`DEMO_AOI` with data west of it: they intersect the AOI but
    cover only part of it, which is what a full-coverage filter removes.

    Examples
    --------
    >>> specs = demo_specs()
    >>> len(specs), sorted({s.relative_orbit for s in specs})
    (21, [36, 79])
    """
    specs = default_specs(BUDAPEST_TILES, DEMO_DATES)
    edge = SwathEdge.from_lonlat(19.10, 47.80, 19.04, 47.20, 32634, keep="west")
    for day in DEMO_EDGE_DATES:
        sensing = dt.datetime.fromisoformat(f"{day}T09:55:59.024+00:00")
        specs.append(ProductSpec("34TCT", sensing, platform=platform_for(day),
                                 relative_orbit=36, valid_edge=edge))  # fmt: skip
    return sorted(specs, key=lambda spec: (spec.sensing_time, spec.tile))
