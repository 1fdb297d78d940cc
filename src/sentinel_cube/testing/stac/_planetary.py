"""Planetary Computer ``sentinel-2-l2a`` items: COGs inside a ``.SAFE`` layout.

Tree (under the root that ``base_url`` points at)::

    sentinel2-l2/34/T/CT/2023/07/06/S2A_MSIL2A_..._T34TCT_....SAFE/
        manifest.safe, MTD_MSIL2A.xml, GRANULE/L2A_.../MTD_TL.xml,
        GRANULE/L2A_.../IMG_DATA/R10m/T34TCT_20230706T094551_B04_10m.tif, ...

Item: id without the ``_Nxxxx`` part, asset keys ``B01``...``B12``, ``B8A``, ``SCL``
and ``safe-manifest``, ``granule-metadata``, ``product-metadata``; ``proj:bbox``,
``proj:shape``, ``proj:transform`` per asset; ``s2:*`` and ``sat:*`` properties. No
scale or offset (Planetary Computer publishes none: the radiometry is the processing
baseline's); ``raster_bands=True`` adds ``raster:bands`` with ``nodata`` and
``data_type`` as the items of the odc-stac test data do.
"""

from __future__ import annotations

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
    proj_fields,
)
from ._facts import ImageFile, ProductFacts

__all__ = ["PlanetaryComputer"]

COLLECTION = "sentinel-2-l2a"
_COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
_METADATA = {  # asset key -> (member of the .SAFE, title)
    "safe-manifest": ("manifest.safe", "SAFE manifest"),
    "granule-metadata": ("GRANULE/{granule}/MTD_TL.xml", "Granule metadata"),
    "product-metadata": ("MTD_MSIL2A.xml", "Product metadata"),
}


class PlanetaryComputer:
    """The Planetary Computer shape (see the module docstring).

    Parameters
    ----------
    api_url : str
        The STAC API root the items' links name.
    raster_bands : bool
        Add ``raster:bands`` (``nodata``, ``data_type``) to the band assets.
    """

    name = "planetary_computer"
    collection = COLLECTION

    def __init__(self, api_url: str = "https://planetarycomputer.invalid/api/stac/v1",
                 *, raster_bands: bool = False) -> None:  # fmt: skip
        self.api_url = api_url.rstrip("/")
        self.raster_bands = raster_bands

    @staticmethod
    def item_id(facts: ProductFacts) -> str:
        """The product name without its ``_Nxxxx`` baseline part."""
        parts = facts.product.product_id.split("_")
        return "_".join(p for p in parts if not (p.startswith("N") and p[1:].isdigit()))

    @staticmethod
    def safe_folder(facts: ProductFacts) -> str:
        zone, band, square = mgrs_parts(facts.product.tile_id)
        when = facts.product.sensing_start
        return f"sentinel2-l2/{zone:02d}/{band}/{square}/{when:%Y/%m/%d}/" \
               f"{facts.product.product_id}.SAFE"  # fmt: skip

    @staticmethod
    def _tif(member: str) -> str:
        return member.removesuffix(".jp2") + ".tif"

    def plan(self, facts: ProductFacts, bands: set[str]) -> list[Planned]:
        """A COG of every native band file of ``bands``; the three metadata files."""
        folder = self.safe_folder(facts)
        planned = [
            Planned(f"{folder}/{self._tif(i.member)}", facts.safe / i.member, True, i.band == "SCL")
            for i in facts.native_images()
            if i.band in bands
        ]
        for member, _ in _METADATA.values():
            member = member.format(granule=facts.granule)
            planned.append(Planned(f"{folder}/{member}", facts.safe / member))
        return planned

    def item(self, facts: ProductFacts, bands: set[str], base_url: str,
             root: Path | None = None) -> dict[str, Any]:  # fmt: skip
        """The item of a product whose files :meth:`plan` placed under ``base_url``."""
        item_id = self.item_id(facts)
        geometry, bbox = footprint(facts)
        extensions = ["eo/v1.0.0", "sat/v1.0.0", "projection/v1.0.0"]
        if self.raster_bands:
            extensions.insert(2, "raster/v1.0.0")
        return {
            "id": item_id,
            "bbox": bbox,
            "type": "Feature",
            "links": self._links(item_id),
            "assets": self._assets(facts, bands, base_url),
            "geometry": geometry,
            "collection": COLLECTION,
            "properties": self._properties(facts),
            "stac_extensions": [
                f"https://stac-extensions.github.io/{e}/schema.json" for e in extensions
            ],  # fmt: skip
            "stac_version": "1.0.0",
        }

    @staticmethod
    def _properties(facts: ProductFacts) -> dict[str, Any]:
        product = facts.product
        props: dict[str, Any] = {
            "datetime": iso_z(product.sensing_start),
            "platform": f"Sentinel-2{platform_letter(facts)}",
            "proj:epsg": product.epsg,
            "instruments": ["msi"],
            "s2:mgrs_tile": product.tile_id,
            "constellation": "Sentinel 2",
            "s2:granule_id": facts.identifiers.get("granuleIdentifier", ""),
            "eo:cloud_cover": float(product.cloud_cover or 0.0),
            "s2:datatake_id": facts.identifiers.get("datatakeIdentifier", ""),
            "s2:product_uri": f"{product.product_id}.SAFE",
            "s2:datastrip_id": facts.identifiers.get("datastripIdentifier", ""),
            "s2:product_type": product.producttype,
            "sat:orbit_state": (product.orbit_direction or "DESCENDING").lower(),
            "s2:datatake_type": "INS-NOBS",
            "s2:generation_time": iso_z(generation(facts), 3),
            "sat:relative_orbit": product.relative_orbit,
            "s2:mean_solar_zenith": facts.sun_zenith,
            "s2:mean_solar_azimuth": facts.sun_azimuth,
            "s2:processing_baseline": product.processing_baseline,
            "s2:reflectance_conversion_factor": facts.earth_sun_factor,
        }
        props.update({f"s2:{k}_percentage": v for k, v in percentages(facts).items()})
        return props

    def _links(self, item_id: str) -> list[dict[str, Any]]:
        items = f"{self.api_url}/collections/{COLLECTION}"
        return [
            {"rel": "collection", "type": "application/json", "href": items},
            {"rel": "parent", "type": "application/json", "href": items},
            {"rel": "root", "type": "application/json", "href": f"{self.api_url}/"},
            {"rel": "self", "type": "application/geo+json", "href": f"{items}/items/{item_id}"},
            {"rel": "license",
             "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"},
        ]  # fmt: skip

    def _assets(self, facts: ProductFacts, bands: set[str], base_url: str) -> dict[str, Any]:
        folder = self.safe_folder(facts)
        assets: dict[str, Any] = {}
        for image in sorted(facts.native_images(), key=lambda i: i.band):
            if image.band in bands:
                url = href(base_url, f"{folder}/{self._tif(image.member)}")
                assets[image.band] = self._band(image, url)
        for key, (member, title) in _METADATA.items():
            url = href(base_url, f"{folder}/{member.format(granule=facts.granule)}")
            assets[key] = {"href": url, "type": "application/xml", "roles": ["metadata"],
                           "title": title}  # fmt: skip
        return assets

    def _band(self, image: ImageFile, url: str) -> dict[str, Any]:
        info = BAND_INFO[image.band]
        asset: dict[str, Any] = {"href": url, **proj_fields(image),
                                 "gsd": pixel_size(image.transform), "type": _COG_TYPE,
                                 "roles": ["data"]}  # fmt: skip
        if image.band == "SCL":
            asset["title"] = info.pc_description
        else:
            asset["title"] = f"{info.pc_description} - {image.resolution}m"
            band = {"name": image.band, "common_name": info.pc_common_name,
                    "description": info.pc_description, "center_wavelength": info.wavelength,
                    "full_width_half_max": info.fwhm}  # fmt: skip
            asset["eo:bands"] = [{k: v for k, v in band.items() if v is not None}]
        if self.raster_bands:
            asset["raster:bands"] = [
                {"nodata": 0, "data_type": "uint8" if image.band == "SCL" else "uint16"}
            ]
        return asset
