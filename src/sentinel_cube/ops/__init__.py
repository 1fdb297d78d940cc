"""Cube operations: clip, cloud mask, exact percentile stretch, time aggregation.

All lazy (dask), all parallel, all bounded in memory by the chunks in flight.
"""

from ._aggregate import HOWS, aggregate
from ._clip import clip
from ._mask import DEFAULT_CLOUD_CLASSES, mask_clouds, scene_classification
from ._stretch import cube_percentiles, stretch

__all__ = [
    "DEFAULT_CLOUD_CLASSES",
    "HOWS",
    "aggregate",
    "clip",
    "cube_percentiles",
    "mask_clouds",
    "scene_classification",
    "stretch",
]
