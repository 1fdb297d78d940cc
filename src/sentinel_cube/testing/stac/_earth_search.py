"""Earth Search v1 ``sentinel-2-l2a`` items: COGs in flat folders, JP2 twins on S3.

Tree (under the root that ``base_url`` points at)::

    sentinel-s2-l2a-cogs/34/T/CT/2023/7/S2A_34TCT_20230706_0_L2A/B04.tif, SCL.tif, ...
                                                              granule_metadata.xml
    sentinel-s2-l2a/tiles/34/T/CT/2023/7/6/0/B04.jp2, SCL.jp2, ...

Item: asset keys by common name (``red``, ``nir08``, ``scl``) for the COGs and
``red-jp2``... for the JPEG 2000 files; ``raster:bands`` with ``scale`` 0.0001 and
``offset`` -0.1 from processing baseline 04.00 (0 before),
``earthsearch:boa_offset_applied`` true when the offset is not 0, and then the COG
pixels carry the offset applied (DN - 1000), as Earth Search's do; ``proj:epsg``,
``mgrs:*``, ``grid:code`` and the ``s2:*`` properties.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ._bands import BAND_INFO
from ._common import (
    Planned,
    footprint,
    generation,
    href,
    iso_z,
    mgrs_parts,
    percentages,
    pixel_size,
    platform_letter,
)
from ._facts import ImageFile, ProductFacts

__all__ = ["EarthSearch"]

COLLECTION = "sentinel-2-l2a"
_COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
_EXTENSIONS = [
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
]


class EarthSearch:
    """The Earth Search v1 shape (see the module docstring).

    Parameters
    ----------
    api_url : str
        The STAC API root the items' links name.
    """

    name = "earth_search"
    collection = COLLECTION

    def __init__(self, api_url: str = "https://earth-search.invalid/v1") -> None:
        self.api_url = api_url.rstrip("/")

    # -- files ---------------------------------------------------------------------------
    @staticmethod
    def item_id(facts: ProductFacts) -> str:
        """``S2A_34TCT_20230706_0_L2A`` (the zone without a leading zero)."""
        zone, band, square = mgrs_parts(facts.product.tile_id)
        day = f"{facts.product.sensing_start:%Y%m%d}"
        return f"S2{platform_letter(facts)}_{zone}{band}{square}_{day}_0_L2A"

    def cog_folder(self, facts: ProductFacts) -> str:
        zone, band, square = mgrs_parts(facts.product.tile_id)
        when = facts.product.sensing_start
        return f"sentinel-s2-l2a-cogs/{zone}/{band}/{square}/{when.year}/{when.month}/" \
               f"{self.item_id(facts)}"  # fmt: skip

    @staticmethod
    def jp2_folder(facts: ProductFacts) -> str:
        zone, band, square = mgrs_parts(facts.product.tile_id)
        when = facts.product.sensing_start
        return f"sentinel-s2-l2a/tiles/{zone}/{band}/{square}/{when.year}/{when.month}/{when.day}/0"

    def plan(self, facts: ProductFacts, bands: set[str]) -> list[Planned]:
        """The COG and JP2 of every native band file of ``bands``, and the tile metadata."""
        cogs, jp2s = self.cog_folder(facts), self.jp2_folder(facts)
        planned = []
        for image in facts.native_images():
            if image.band in bands:
                source = facts.safe / image.member
                class_band = image.band == "SCL"
                # Earth Search applied ESA's offset to its COGs' pixels (and says so with
                # earthsearch:boa_offset_applied); its JP2 twins are ESA's files unchanged
                shift = 0 if class_band else int(facts.product.bands[image.band].offset)
                planned.append(Planned(f"{cogs}/{image.band}.tif", source, True, class_band, shift))
                planned.append(Planned(f"{jp2s}/{image.band}.jp2", source))
        tile_xml = facts.safe / "GRANULE" / facts.granule / "MTD_TL.xml"
        planned.append(Planned(f"{cogs}/granule_metadata.xml", tile_xml))
        return planned

    # -- item ----------------------------------------------------------------------------
    def item(self, facts: ProductFacts, bands: set[str], base_url: str,
             root: Path | None = None) -> dict[str, Any]:  # fmt: skip
        """The item of a product whose files :meth:`plan` placed under ``base_url``."""
        item_id = self.item_id(facts)
        geometry, bbox = footprint(facts)
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": item_id,
            "properties": self._properties(facts, base_url),
            "geometry": geometry,
            "links": self._links(item_id),
            "assets": self._assets(facts, bands, base_url),
            "bbox": bbox,
            "stac_extensions": list(_EXTENSIONS),
            "collection": COLLECTION,
        }

    def _properties(self, facts: ProductFacts, base_url: str) -> dict[str, Any]:
        product = facts.product
        zone, band, square = mgrs_parts(product.tile_id)
        made = iso_z(generation(facts), 3)
        offset = facts.radiometry(next(b for b in product.bands if b != "SCL"))[1]
        props: dict[str, Any] = {
            "created": made,
            "platform": f"sentinel-2{platform_letter(facts).lower()}",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": float(product.cloud_cover or 0.0),
            "proj:epsg": product.epsg,
            "mgrs:utm_zone": zone,
            "mgrs:latitude_band": band,
            "mgrs:grid_square": square,
            "grid:code": f"MGRS-{zone}{band}{square}",
            "view:sun_azimuth": facts.sun_azimuth,
            "view:sun_elevation": 90.0 - facts.sun_zenith,
        }
        props.update({f"s2:{k}_percentage": v for k, v in percentages(facts).items()})
        props.update({
            "s2:product_type": product.producttype,
            "s2:processing_baseline": product.processing_baseline,
            "s2:product_uri": f"{product.product_id}.SAFE",
            "s2:generation_time": iso_z(generation(facts)),
            "s2:datatake_id": facts.identifiers.get("datatakeIdentifier", ""),
            "s2:datatake_type": "INS-NOBS",
            "s2:datastrip_id": facts.identifiers.get("datastripIdentifier", ""),
            "s2:granule_id": facts.identifiers.get("granuleIdentifier", ""),
            "s2:reflectance_conversion_factor": facts.earth_sun_factor,
            "datetime": iso_z(product.sensing_start),
            "s2:sequence": "0",
            "earthsearch:s3_path": href(base_url, self.cog_folder(facts)),
            "earthsearch:payload_id": "roda-sentinel2/workflow-sentinel2-to-stac/"
            + hashlib.md5(product.product_id.encode()).hexdigest(),
            "earthsearch:boa_offset_applied": offset != 0.0,
            "processing:software": {"sentinel_cube.testing": "1"},
            "updated": made,
        })  # fmt: skip
        return props

    def _links(self, item_id: str) -> list[dict[str, Any]]:
        items = f"{self.api_url}/collections/{COLLECTION}"
        return [
            {"rel": "self", "type": "application/geo+json", "href": f"{items}/items/{item_id}"},
            {"rel": "canonical", "href": f"{items}/items/{item_id}.json",
             "type": "application/json"},
            {"rel": "license",
             "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"},
            {"rel": "derived_from", "type": "application/geo+json",
             "href": f"{self.api_url}/collections/sentinel-2-l1c/items/"
                     f"{item_id.removesuffix('L2A')}L1C"},
            {"rel": "parent", "type": "application/json", "href": items},
            {"rel": "collection", "type": "application/json", "href": items},
            {"rel": "root", "type": "application/json", "href": self.api_url},
            {"rel": "thumbnail", "href": f"{items}/items/{item_id}/thumbnail"},
        ]  # fmt: skip

    def _assets(self, facts: ProductFacts, bands: set[str], base_url: str) -> dict[str, Any]:
        cogs, jp2s = self.cog_folder(facts), self.jp2_folder(facts)
        images = sorted((i for i in facts.native_images() if i.band in bands),
                        key=lambda i: BAND_INFO[i.band].earth_search_key)  # fmt: skip
        assets: dict[str, Any] = {}
        for image in images:
            key = BAND_INFO[image.band].earth_search_key
            assets[key] = self._band(facts, image, href(base_url, f"{cogs}/{image.band}.tif"),
                                     _COG_TYPE)  # fmt: skip
        assets["granule_metadata"] = {
            "href": href(base_url, f"{cogs}/granule_metadata.xml"),
            "type": "application/xml",
            "roles": ["metadata"],
        }
        for image in images:
            key = BAND_INFO[image.band].earth_search_key
            assets[f"{key}-jp2"] = self._band(
                facts, image, href(base_url, f"{jp2s}/{image.band}.jp2"), "image/jp2"
            )
        return assets

    @staticmethod
    def _band(facts: ProductFacts, image: ImageFile, url: str, media: str) -> dict[str, Any]:
        info = BAND_INFO[image.band]
        size = pixel_size(image.transform)
        asset: dict[str, Any] = {"href": url, "type": media}
        if image.band == "SCL":
            asset["title"] = info.description
            raster: dict[str, Any] = {"nodata": 0, "data_type": "uint8",
                                      "spatial_resolution": size}  # fmt: skip
        else:
            scale, offset = facts.radiometry(image.band)
            asset["title"] = f"{info.description} - {image.resolution}m"
            asset["eo:bands"] = [{
                "name": info.earth_search_key, "common_name": info.common_name,
                "description": info.description.split(" - ")[0],
                "center_wavelength": info.wavelength, "full_width_half_max": info.fwhm,
            }]  # fmt: skip
            asset["gsd"] = size
            raster = {"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                      "spatial_resolution": size, "scale": scale, "offset": offset}  # fmt: skip
        asset["proj:shape"] = list(image.shape)
        asset["proj:transform"] = [float(v) for v in list(image.transform)[:6]]
        asset["raster:bands"] = [raster]
        asset["roles"] = ["data", "reflectance"]
        return asset
