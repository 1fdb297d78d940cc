"""``manifest.safe`` of a synthetic product: every file with its size and checksum."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._metadata import _iso_ms, _iso_us

if TYPE_CHECKING:
    from ._spec import ProductSpec

__all__ = ["ManifestEntry", "file_checksum", "manifest"]


# --------------------------------------------------------------------------------------
# manifest.safe
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestEntry:
    """One file of the product for ``manifest.safe``."""

    object_id: str
    relpath: str  # relative to the .SAFE folder, "/" separated
    mime: str


def file_checksum(path: Path, name: str = "MD5") -> str:
    """Hex digest of a file (``"MD5"`` lower case, ``"SHA3-256"``)."""
    algo = {"MD5": hashlib.md5, "SHA3-256": hashlib.sha3_256}[name]()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            algo.update(chunk)
    return algo.hexdigest()


def manifest(
    spec: ProductSpec,
    safe_dir: Path,
    entries: Sequence[ManifestEntry],
    footprint: str,
    checksum: str = "MD5",
) -> str:
    """Text of ``manifest.safe`` listing ``entries`` with their size and checksum."""
    level = spec.level[1:]  # "2A" / "1C"
    kind = f"Level-{level}"
    product_label = f"S2_{kind}_Product_Metadata"
    img_units = "".join(
        f'            <xfdu:contentUnit ID="{e.object_id[: -len("_Data")]}_Unit" '
        'textInfo="Image Data container" unitType="Measurement Data Unit">\n'
        f'              <dataObjectPointer dataObjectID="{e.object_id}"/>\n'
        "            </xfdu:contentUnit>\n"
        for e in entries
        if e.object_id.startswith("IMG_DATA")
    )
    objects = []
    for e in entries:
        path = safe_dir / e.relpath
        objects.append(
            f'    <dataObject ID="{e.object_id}">\n'
            f'      <byteStream mimeType="{e.mime}" size="{path.stat().st_size}">\n'
            f'        <fileLocation href="./{e.relpath}" locatorType="URL"/>\n'
            f'        <checksum checksumName="{checksum}">'
            f"{file_checksum(path, checksum)}</checksum>\n"
            "      </byteStream>\n"
            "    </dataObject>\n"
        )
    start = _iso_ms(spec.sensing_time)
    gen = _iso_us(spec.generation_time)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<xfdu:XFDU xmlns:gml="http://www.opengis.net/gml" '
        'xmlns:safe="http://www.esa.int/safe/sentinel/1.1" xmlns:xfdu="urn:ccsds:schema:xfdu:1" '
        f'version="esa/safe/sentinel/1.1/sentinel-2/msi/archive_l{level.lower()}_user_product">\n'
        "  <informationPackageMap>\n"
        '    <xfdu:contentUnit dmdID="acquisitionPeriod platform" pdiID="processing" '
        f'textInfo="SENTINEL-2 MSI {kind} User Product" unitType="Product_{kind}">\n'
        f'      <xfdu:contentUnit ID="Product_Metadata_{kind}" unitType="Metadata Unit">\n'
        f'        <dataObjectPointer dataObjectID="{product_label}"/>\n'
        "      </xfdu:contentUnit>\n"
        '      <xfdu:contentUnit ID="Tiles" textInfo="Tiles Container">\n'
        '        <xfdu:contentUnit ID="Tile1" textInfo="Tile Container">\n'
        '          <xfdu:contentUnit ID="IMG_Data_Tile1" textInfo="Image Data Container">\n'
        f"{img_units}"
        "          </xfdu:contentUnit>\n"
        f'          <xfdu:contentUnit ID="S2_{kind}_Tile1_Metadata_Unit" '
        'unitType="Metadata Unit">\n'
        f'            <dataObjectPointer dataObjectID="S2_{kind}_Tile1_Metadata"/>\n'
        "          </xfdu:contentUnit>\n"
        "        </xfdu:contentUnit>\n"
        "      </xfdu:contentUnit>\n"
        "    </xfdu:contentUnit>\n"
        "  </informationPackageMap>\n"
        "  <metadataSection>\n"
        '    <metadataObject ID="acquisitionPeriod" category="DMD" classification="DESCRIPTION">\n'
        '      <metadataWrap mimeType="text/xml" textInfo="Acquisition Period" '
        'vocabularyName="Sentinel-SAFE">\n'
        "        <xmlData>\n"
        "          <safe:acquisitionPeriod>\n"
        f"            <safe:startTime>{start}</safe:startTime>\n"
        "          </safe:acquisitionPeriod>\n"
        "        </xmlData>\n"
        "      </metadataWrap>\n"
        "    </metadataObject>\n"
        '    <metadataObject ID="measurementOrbitReference" category="DMD" '
        'classification="DESCRIPTION">\n'
        '      <metadataWrap mimeType="text/xml" textInfo="Orbit Reference" '
        'vocabularyName="Sentinel-SAFE">\n'
        "        <xmlData>\n"
        "          <safe:orbitReference>\n"
        f'            <safe:orbitNumber groundTrackDirection="{spec.orbit_direction.lower()}" '
        f'type="start">{spec.absolute_orbit:06d}</safe:orbitNumber>\n'
        '            <safe:relativeOrbitNumber type="start">'
        f"{spec.relative_orbit:03d}</safe:relativeOrbitNumber>\n"
        "          </safe:orbitReference>\n"
        "        </xmlData>\n"
        "      </metadataWrap>\n"
        "    </metadataObject>\n"
        '    <metadataObject ID="platform" category="DMD" classification="DESCRIPTION">\n'
        '      <metadataWrap mimeType="text/xml" textInfo="Platform Description" '
        'vocabularyName="Sentinel-SAFE">\n'
        "        <xmlData>\n"
        "          <safe:platform>\n"
        f"            <safe:nssdcIdentifier>2015-000A</safe:nssdcIdentifier>\n"
        "            <safe:familyName>SENTINEL</safe:familyName>\n"
        f"            <safe:number>{spec.platform[1:]}</safe:number>\n"
        "            <safe:instrument>\n"
        '              <safe:familyName abbreviation="MSI">'
        "Multi-Spectral Instrument</safe:familyName>\n"
        "            </safe:instrument>\n"
        "          </safe:platform>\n"
        "        </xmlData>\n"
        "      </metadataWrap>\n"
        "    </metadataObject>\n"
        '    <metadataObject ID="processing" category="PDI" classification="PROVENANCE">\n'
        '      <metadataWrap mimeType="text/xml" textInfo="Processing" '
        'vocabularyName="Sentinel-SAFE">\n'
        "        <xmlData>\n"
        '          <safe:processing xmlns="http://www.esa.int/safe/sentinel/1.1" '
        f'name="Generation of {kind} User Product" start="{gen}">\n'
        "          </safe:processing>\n"
        "        </xmlData>\n"
        "      </metadataWrap>\n"
        "    </metadataObject>\n"
        '    <metadataObject ID="measurementFrameSet" category="DMD" '
        'classification="DESCRIPTION">\n'
        '      <metadataWrap mimeType="text/xml" textInfo="Frame Set" '
        'vocabularyName="Sentinel-SAFE">\n'
        "        <xmlData>\n"
        "          <safe:frameSet>\n"
        '            <safe:footPrint srsName="http://www.opengis.net/gml/srs/epsg.xml#4326">\n'
        f"              <gml:coordinates>{footprint}</gml:coordinates>\n"
        "            </safe:footPrint>\n"
        "          </safe:frameSet>\n"
        "        </xmlData>\n"
        "      </metadataWrap>\n"
        "    </metadataObject>\n"
        f'    <metadataObject ID="{product_label}_Information" category="DMD" '
        'classification="DESCRIPTION">\n'
        f'      <dataObjectPointer dataObjectID="{product_label}"/>\n'
        "    </metadataObject>\n"
        f'    <metadataObject ID="S2_{kind}_Tile1_Metadata_Information" category="DMD" '
        'classification="DESCRIPTION">\n'
        f'      <dataObjectPointer dataObjectID="S2_{kind}_Tile1_Metadata"/>\n'
        "    </metadataObject>\n"
        "  </metadataSection>\n"
        "  <dataObjectSection>\n"
        f"{''.join(objects)}"
        "  </dataObjectSection>\n"
        "</xfdu:XFDU>\n"
    )
