"""CDSE STAC ``sentinel-2-l2a`` items: the ESA ``.SAFE`` folder's JPEG 2000 files on S3.

Tree (under the root that ``base_url`` points at; CDSE's is ``s3://eodata``)::

    Sentinel-2/MSI/L2A/2023/07/06/S2A_MSIL2A_..._T34TCT_....SAFE/   (the whole folder)

Item (STAC 1.1, as the CDSE catalogue's generator writes it): id = product name,
asset keys ``B04_10m``, ``B8A_20m``, ``SCL_20m``... (one per band file, every
resolution present) with ``s3://`` hrefs and an ``alternate.https`` href,
``proj:code`` (``"EPSG:32634"``), ``proj:shape``, ``proj:bbox``, ``proj:transform``,
``raster:scale``/``raster:offset`` (computed from the product's baseline; CDSE's own
catalogue writes -0.1 whatever the baseline), ``nodata``, ``data_type``, STAC 1.1
``bands``, ``file:size``/``file:checksum``/``file:local_path``; the metadata files;
``processing:version`` (the baseline), ``grid:code``, ``sat:*``, ``eopf:*``,
``statistics`` (the scene-content percentages) and the ``auth:``/``storage:`` schemes.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from ._bands import BAND_INFO
from ._common import (
    Planned,
    file_checksum,
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

__all__ = ["CDSE"]

COLLECTION = "sentinel-2-l2a"
_DESIGNATORS = {"A": "2015-028A", "B": "2017-013A", "C": "2024-157A"}
_STATISTICS = {  # CDSE statistics key -> percentage short name
    "nodata": "nodata_pixel", "saturated_defective": "saturated_defective_pixel",
    "dark_area": "dark_features", "cloud_shadow": "cloud_shadow", "vegetation": "vegetation",
    "not_vegetated": "not_vegetated", "water": "water", "unclassified": "unclassified",
    "medium_proba_clouds": "medium_proba_clouds", "high_proba_clouds": "high_proba_clouds",
    "thin_cirrus": "thin_cirrus",
}  # fmt: skip
_SCL_CLASSES = (  # value, name, percentage short name
    (0, "no_data", "nodata_pixel"), (1, "saturated_or_defective", "saturated_defective_pixel"),
    (2, "dark_area_pixels", "dark_features"), (3, "cloud_shadows", "cloud_shadow"),
    (4, "vegetation", "vegetation"), (5, "not_vegetated", "not_vegetated"),
    (6, "water", "water"), (7, "unclassified", "unclassified"),
    (8, "cloud_medium_probability", "medium_proba_clouds"),
    (9, "cloud_high_probability", "high_proba_clouds"), (10, "thin_cirrus", "thin_cirrus"),
    (11, "snow", "snow_ice"),
)  # fmt: skip
_METADATA = {  # asset key -> (member, title)
    "safe_manifest": ("manifest.safe", "manifest.safe"),
    "product_metadata": ("MTD_MSIL2A.xml", "MTD_MSIL2A.xml"),
    "granule_metadata": ("GRANULE/{granule}/MTD_TL.xml", "MTD_TL.xml"),
}
_EXTENSIONS = [
    "https://cs-si.github.io/eopf-stac-extension/v1.2.0/schema.json",
    "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json",
    "https://stac-extensions.github.io/authentication/v1.1.0/schema.json",
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
    "https://stac-extensions.github.io/eo/v2.0.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/product/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v2.0.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.1.0/schema.json",
    "https://stac-extensions.github.io/storage/v2.0.0/schema.json",
    "https://stac-extensions.github.io/timestamps/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.1.0/schema.json",
]
_S3 = {"alternate:name": "S3", "auth:refs": ["s3"], "storage:refs": ["cdse-s3", "creodias-s3"]}


class CDSE:
    """The CDSE STAC shape (see the module docstring).

    Parameters
    ----------
    https_url : str
        Base of the ``alternate.https`` hrefs and of the zipped ``Product`` asset
        (CDSE's are OData URLs that need a token; never read by the tests).
    s3_endpoint : str
        The ``platform`` of the ``cdse-s3`` storage scheme (the S3 endpoint).
    """

    name = "cdse"
    collection = COLLECTION

    def __init__(self, https_url: str = "https://download.invalid/odata/v1",
                 s3_endpoint: str = "https://eodata.invalid") -> None:  # fmt: skip
        self.https_url = https_url.rstrip("/")
        self.s3_endpoint = s3_endpoint

    @staticmethod
    def safe_folder(facts: ProductFacts) -> str:
        when = facts.product.sensing_start
        return f"Sentinel-2/MSI/L2A/{when:%Y/%m/%d}/{facts.product.product_id}.SAFE"

    @staticmethod
    def _members(facts: ProductFacts, bands: set[str]) -> list[str]:
        members = [i.member for i in facts.images if i.band in bands]
        members += [m.format(granule=facts.granule) for m, _ in _METADATA.values()]
        return members

    def plan(self, facts: ProductFacts, bands: set[str]) -> list[Planned]:
        """A copy of the metadata and of every band file of ``bands`` (all resolutions)."""
        folder = self.safe_folder(facts)
        return [Planned(f"{folder}/{m}", facts.safe / m) for m in self._members(facts, bands)]

    def item(self, facts: ProductFacts, bands: set[str], base_url: str,
             root: Path | None = None) -> dict[str, Any]:  # fmt: skip
        """The item of a product whose files :meth:`plan` placed under ``base_url``.

        ``root`` is the local folder of the tree (for ``file:size``/``file:checksum``;
        default: the product's own files, which are the same bytes).
        """
        product = facts.product
        geometry, bbox = footprint(facts)
        folder = self.safe_folder(facts)
        return {
            "type": "Feature",
            "stac_version": "1.1.0",
            "collection": COLLECTION,
            "id": product.product_id,
            "properties": self._properties(facts),
            "bbox": bbox,
            "geometry": geometry,
            "links": [
                {
                    "rel": "version-history",
                    "type": "application/json",
                    "href": f"{self.https_url}/traces/name/{product.product_id}.SAFE.zip",
                    "title": "Product history record",
                },
                {
                    "rel": "enclosure",
                    "type": "application/x-directory",
                    "href": href(base_url, folder) + "/",
                    "title": "S3 path to source directory",
                    "auth:refs": ["s3"],
                    "storage:refs": ["cdse-s3", "creodias-s3"],
                },
            ],  # fmt: skip
            "assets": self._assets(facts, bands, base_url, root),
            "stac_extensions": list(_EXTENSIONS),
        }

    def _properties(self, facts: ProductFacts) -> dict[str, Any]:
        product = facts.product
        zone, band, square = mgrs_parts(product.tile_id)
        made = iso_z(generation(facts))
        shares = percentages(facts)
        views = list(facts.view_angles.values()) or [(float("nan"), float("nan"))]
        letter = platform_letter(facts)
        return {
            "created": made, "updated": made, "published": made,
            "eopf:origin_datetime": made,
            "auth:schemes": {"s3": {"type": "s3"}, "oidc": {"type": "openIdConnect"}},
            "storage:schemes": {
                "cdse-s3": {"title": "Copernicus Data Space Ecosystem S3",
                            "platform": self.s3_endpoint, "requester_pays": False,
                            "type": "custom-s3"},
                "creodias-s3": {"title": "CREODIAS S3", "platform": self.s3_endpoint,
                                "requester_pays": True, "type": "custom-s3"},
            },
            "datetime": iso_z(product.sensing_start),
            "start_datetime": iso_z(product.sensing_start),
            "end_datetime": iso_z(product.sensing_start),
            "platform": f"sentinel-2{letter.lower()}",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "gsd": 10 * facts.scale,
            "processing:level": "L2",
            "processing:datetime": made,
            "product:type": product.producttype,
            "product:timeliness": "PT24H",
            "product:timeliness_category": "NRT",
            "eo:cloud_cover": round(float(product.cloud_cover or 0.0), 2),
            "eo:snow_cover": shares["snow_ice"],
            "sat:orbit_state": (product.orbit_direction or "DESCENDING").lower(),
            "sat:relative_orbit": product.relative_orbit,
            "sat:absolute_orbit": facts.absolute_orbit,
            "sat:platform_international_designator": _DESIGNATORS.get(letter, ""),
            "grid:code": f"MGRS-{zone:02d}{band}{square}",
            "view:sun_azimuth": facts.sun_azimuth,
            "view:sun_elevation": 90.0 - facts.sun_zenith,
            "eopf:datastrip_id": facts.identifiers.get("datastripIdentifier", ""),
            "eopf:datatake_id": facts.identifiers.get("datatakeIdentifier", ""),
            "eopf:instrument_mode": "INS-NOBS",
            "statistics": {key: shares[name] for key, name in _STATISTICS.items()},
            "processing:version": product.processing_baseline,
            "view:azimuth": sum(v[1] for v in views) / len(views),
            "view:incidence_angle": sum(v[0] for v in views) / len(views),
            "processing:software": {"sentinel_cube.testing": "1"},
            "processing:facility": "ESA",
            "expires": "9999-01-01T00:00:00.000000Z",
        }  # fmt: skip

    def _file(self, facts: ProductFacts, member: str, base_url: str, root: Path | None,
              algorithm: str) -> dict[str, Any]:  # fmt: skip
        relpath = f"{self.safe_folder(facts)}/{member}"
        local = root / relpath if root is not None else facts.safe / member
        return {
            "file:checksum": file_checksum(local, algorithm),
            "file:size": local.stat().st_size,
            "file:local_path": f"{facts.product.product_id}.SAFE/{member}",
            "href": href(base_url, relpath),
            **_S3,
            "alternate": {"https": {"href": href(self.https_url, relpath),
                                    "alternate:name": "HTTPS", "auth:refs": ["oidc"],
                                    "storage:refs": []}},
        }  # fmt: skip

    def _assets(self, facts: ProductFacts, bands: set[str], base_url: str,
                root: Path | None) -> dict[str, Any]:  # fmt: skip
        assets: dict[str, Any] = {}
        for key, (member, title) in _METADATA.items():
            member = member.format(granule=facts.granule)
            assets[key] = {"type": "application/xml", "title": title, "roles": ["metadata"],
                           **self._file(facts, member, base_url, root, "md5")}  # fmt: skip
        for image in facts.images:
            if image.band in bands:
                asset = self._band(facts, image)
                asset.update(self._file(facts, image.member, base_url, root, "sha3-256"))
                assets[f"{image.band}_{image.resolution}m"] = asset
        uid = uuid.uuid5(uuid.NAMESPACE_URL, f"sentinel-cube:{facts.product.product_id}")
        assets["Product"] = {
            "type": "application/zip", "title": "Zipped product",
            "roles": ["data", "metadata", "archive"],
            "file:local_path": f"{facts.product.product_id}.SAFE.zip",
            "href": f"{self.https_url}/Products({uid})/$value", "auth:refs": ["oidc"],
        }  # fmt: skip
        return assets

    @staticmethod
    def _band(facts: ProductFacts, image: ImageFile) -> dict[str, Any]:
        info = BAND_INFO[image.band]
        native = next(i.resolution for i in facts.images if i.band == image.band and i.native)
        sampling = ("original" if native == image.resolution
                    else "upsampled" if native > image.resolution else "downsampled")  # fmt: skip
        roles = ["data", "reflectance", f"sampling:{sampling}", f"gsd:{image.resolution}m"]
        asset: dict[str, Any] = {"type": "image/jp2",
                                 "title": f"{info.description} - {image.resolution}m"}  # fmt: skip
        if image.band == "SCL":
            roles.remove("reflectance")
            asset.update(roles=roles, data_type="uint8", nodata=0)
        else:
            scale, offset = facts.radiometry(image.band)
            band = {"name": image.band, "description": info.description,
                    "eo:center_wavelength": info.cdse_wavelength,
                    "eo:full_width_half_max": info.cdse_fwhm,
                    "eo:common_name": info.cdse_common_name}  # fmt: skip
            asset.update(roles=roles, bands=[band], data_type="uint16", nodata=0)
            asset.update({"raster:scale": scale, "raster:offset": offset})
        asset["gsd"] = pixel_size(image.transform)
        asset["proj:code"] = f"EPSG:{facts.product.epsg}"
        asset.update(proj_fields(image))
        if image.band in facts.view_angles:
            incidence, azimuth = facts.view_angles[image.band]
            asset.update({"view:azimuth": azimuth, "view:incidence_angle": incidence})
        if image.band == "SCL":
            shares = percentages(facts)
            classes = []
            for value, name, share in _SCL_CLASSES:
                entry: dict[str, Any] = {"value": value, "name": name}
                if value == 0:
                    entry["nodata"] = True
                if image.native:
                    entry["percentage"] = shares[share]
                classes.append(entry)
            asset["classification:classes"] = classes
        return asset
