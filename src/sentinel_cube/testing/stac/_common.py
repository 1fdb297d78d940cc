"""Pieces every provider's items share: files to write, hrefs, percentages, checksums."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shapely.geometry import mapping

from ...mgrs import parse_tile_id
from ..servers._loopback import iso_z
from ._facts import ProductFacts

__all__ = [
    "PERCENTAGES",
    "Planned",
    "file_checksum",
    "footprint",
    "generation",
    "href",
    "iso_z",
    "mgrs_parts",
    "percentages",
    "pixel_size",
    "platform_letter",
    "proj_fields",
]

#: The ``s2:*_percentage`` properties Earth Search and Planetary Computer publish.
PERCENTAGES = (
    "degraded_msi_data", "nodata_pixel", "saturated_defective_pixel", "dark_features",
    "cloud_shadow", "vegetation", "not_vegetated", "water", "unclassified",
    "medium_proba_clouds", "high_proba_clouds", "thin_cirrus", "snow_ice",
)  # fmt: skip


@dataclass(frozen=True)
class Planned:
    """One file of a provider's tree: where it goes and what it is made from.

    Attributes
    ----------
    relpath : str
        Path under the provider's root (``/`` separated); the item's href is
        ``base_url + "/" + relpath``.
    source : pathlib.Path
        The generated file it comes from.
    cog : bool
        Converted to a COG (else copied byte for byte).
    class_band : bool
        A class band (COG overviews by nearest neighbour).
    shift : int
        Added to every valid DN of the COG (Earth Search's harmonised COGs of
        baseline 04.00 on: -1000, the offset applied to the pixels).
    """

    relpath: str
    source: Path
    cog: bool = False
    class_band: bool = False
    shift: int = 0


def href(base_url: str, relpath: str) -> str:
    """``base_url`` joined with ``relpath`` by exactly one ``/``."""
    return f"{base_url.rstrip('/')}/{relpath.lstrip('/')}"


def platform_letter(facts: ProductFacts) -> str:
    """``"A"`` for S2A..."""
    return facts.product.platform[-1].upper()


def mgrs_parts(tile: str) -> tuple[int, str, str]:
    """``(utm zone, latitude band, 100 km square)`` of ``"34TCT"``."""
    zone, band, column, row = parse_tile_id(tile)
    return zone, band, column + row


def percentages(facts: ProductFacts) -> dict[str, float]:
    """The 13 scene-content percentages by short name (``"vegetation"``...)."""
    product = facts.product
    content = {"vegetation": product.vegetation, "not_vegetated": product.not_vegetated,
               "water": product.water, "snow_ice": product.snow_ice}  # fmt: skip
    values = {}
    for name in PERCENTAGES:
        value = content.get(name)
        if value is None:
            value = product.quality.get(f"{name}_percentage")
        values[name] = float(value) if value is not None else 0.0
    return values


def footprint(facts: ProductFacts) -> tuple[dict[str, Any], list[float]]:
    """The item ``geometry`` (GeoJSON) and ``bbox`` of the product's footprint."""
    shape = facts.product.footprint
    return json.loads(json.dumps(mapping(shape))), [float(v) for v in shape.bounds]


def file_checksum(path: Path, algorithm: str = "md5") -> str:
    """A ``file:checksum`` multihash: ``md5`` (``d50110...``) or ``sha3-256`` (``1620...``)."""
    prefix = {"md5": "d50110", "sha3-256": "1620"}[algorithm]
    digest = hashlib.new(algorithm.replace("-", "_"))
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return prefix + digest.hexdigest()


def generation(facts: ProductFacts) -> datetime:
    """The processing time (the sensing time when the metadata has none)."""
    return facts.product.generation_time or facts.product.sensing_start


def pixel_size(transform: Any) -> float:
    """The pixel side in metres of a north-up transform."""
    return float(abs(transform.a))


def proj_fields(image: Any) -> dict[str, Any]:
    """``proj:bbox``, ``proj:shape`` and ``proj:transform`` of an :class:`ImageFile`."""
    return {
        "proj:bbox": image.bbox,
        "proj:shape": list(image.shape),
        "proj:transform": [float(v) for v in list(image.transform)[:6]],
    }
