"""XML writers for synthetic products: ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml`` and
``GRANULE/*/MTD_TL.xml``.

The documents follow the element names, nesting and namespaces of ESA's real
files (Product Specification Document 14.x, ``SAFE_COMPACT`` format) but leave
out what a reader does not need: spectral response curves, GIPP lists, the 5 km
sun/view angle grids, quality masks. Every value that can be recomputed from the
rasters (percentages, footprint) is computed from them. The image-content
percentages come from :mod:`._percentages`; ``manifest.safe`` is written by
:mod:`._manifest`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ...bands import NATIVE_RESOLUTION, SPECTRAL_BANDS
from ._percentages import SCL_PERCENTAGE_ELEMENTS, ContentStats

if TYPE_CHECKING:
    from ._spec import ProductSpec

__all__ = ["footprint_text", "product_metadata", "tile_metadata"]

_NS_L2A = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd"
_NS_L1C = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd"
_NS_TL_L2A = "https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd"
_NS_TL_L1C = "https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-1C_Tile_Metadata.xsd"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"

# (MIN, MAX, CENTRAL) wavelength in nm and solar irradiance, bands in bandId order
_WAVELENGTHS = (
    (412, 456, 442.7), (456, 533, 492.7), (538, 583, 559.8), (646, 684, 664.6),
    (695, 714, 704.1), (731, 749, 740.5), (769, 797, 782.8), (760, 907, 832.8),
    (848, 881, 864.7), (932, 958, 945.1), (1337, 1412, 1373.5), (1539, 1682, 1613.7),
    (2078, 2320, 2202.4),
)  # fmt: skip
_SOLAR_IRRADIANCE = (
    1884.69, 1959.66, 1823.24, 1512.06, 1424.64, 1287.61, 1162.08, 1041.63, 955.32, 812.92,
    367.15, 245.59, 85.25,
)  # fmt: skip
_SCL_TEXT = (
    "SC_NODATA", "SC_SATURATED_DEFECTIVE", "SC_DARK_FEATURE_SHADOW", "SC_CLOUD_SHADOW",
    "SC_VEGETATION", "SC_NOT_VEGETATED", "SC_WATER", "SC_UNCLASSIFIED", "SC_CLOUD_MEDIUM_PROBA",
    "SC_CLOUD_HIGH_PROBA", "SC_THIN_CIRRUS", "SC_SNOW_ICE",
)  # fmt: skip


def _pct(value: float) -> str:
    return f"{value:.6f}"


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _iso_ms(t: dt.datetime) -> str:
    """``2023-08-10T09:45:49.024Z`` (product start times)."""
    t = t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _iso_us(t: dt.datetime) -> str:
    """``2023-08-10T12:43:46.000000Z`` (generation and tile sensing times)."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sun_angles(lon: float, lat: float, when: dt.datetime) -> tuple[float, float]:
    """Solar zenith and azimuth (degrees) with NOAA's low-precision formulas."""
    t = when.astimezone(dt.UTC)
    doy = t.timetuple().tm_yday
    hours = t.hour + t.minute / 60 + t.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hours - 12) / 24)
    eqtime = 229.18 * (
        0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g)
    )  # fmt: skip
    decl = (
        0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g) + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g)
    )  # fmt: skip
    true_solar_minutes = hours * 60 + eqtime + 4 * lon
    ha = math.radians(true_solar_minutes / 4 - 180)
    phi = math.radians(lat)
    cos_zen = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    zenith = math.degrees(math.acos(max(-1.0, min(1.0, cos_zen))))
    azimuth = math.degrees(
        math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi))
    )
    return zenith, (azimuth + 180.0) % 360.0


def _earth_sun_u(when: dt.datetime) -> float:
    doy = when.timetuple().tm_yday
    return 1.0 / (1.0 - 0.01673 * math.cos(0.0172 * (doy - 4))) ** 2


def footprint_text(lonlat_ring: Sequence[tuple[float, float]]) -> str:
    """``"lat lon lat lon ... "`` as in ``EXT_POS_LIST`` (closed ring, trailing space)."""
    return "".join(f"{lat!r} {lon!r} " for lon, lat in lonlat_ring)


# --------------------------------------------------------------------------------------
# MTD_MSIL1C.xml / MTD_MSIL2A.xml
# --------------------------------------------------------------------------------------


def product_metadata(
    spec: ProductSpec,
    image_files: Iterable[str],
    footprint: str,
    stats: ContentStats,
) -> str:
    """Text of ``MTD_MSIL2A.xml`` (or ``MTD_MSIL1C.xml`` for L1C specs).

    ``image_files`` are paths relative to the ``.SAFE`` folder without ``.jp2``.
    """
    l2a = spec.level == "L2A"
    ns = _NS_L2A if l2a else _NS_L1C
    root = "Level-2A_User_Product" if l2a else "Level-1C_User_Product"
    start = _iso_ms(spec.sensing_time)
    baseline = spec.baseline
    pct = stats.percentages
    files = "\n".join(f"            <IMAGE_FILE>{f}</IMAGE_FILE>" for f in image_files)

    if l2a:
        quant = (
            "      <QUANTIFICATION_VALUES_LIST>\n"
            '        <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>\n'
            '        <AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>\n'
            '        <WVP_QUANTIFICATION_VALUE unit="cm">1000.0</WVP_QUANTIFICATION_VALUE>\n'
            "      </QUANTIFICATION_VALUES_LIST>\n"
        )
        offset_tag, offset_list = "BOA_ADD_OFFSET", "BOA_ADD_OFFSET_VALUES_LIST"
    else:
        quant = '      <QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>\n'
        offset_tag, offset_list = "RADIO_ADD_OFFSET", "Radiometric_Offset_List"
    offsets = ""
    if spec.offset:
        rows = "".join(
            f'        <{offset_tag} band_id="{i}">{-spec.offset}</{offset_tag}>\n'
            for i in range(len(SPECTRAL_BANDS))
        )
        offsets = f"      <{offset_list}>\n{rows}      </{offset_list}>\n"
    irradiance = "".join(
        f'          <SOLAR_IRRADIANCE bandId="{i}" unit="W/m²/µm">{v}</SOLAR_IRRADIANCE>\n'
        for i, v in enumerate(_SOLAR_IRRADIANCE)
    )
    spectral = "".join(
        f'        <Spectral_Information bandId="{i}" physicalBand="{_physical(band)}">\n'
        f"          <RESOLUTION>{NATIVE_RESOLUTION[band]}</RESOLUTION>\n"
        "          <Wavelength>\n"
        f'            <MIN unit="nm">{_WAVELENGTHS[i][0]}</MIN>\n'
        f'            <MAX unit="nm">{_WAVELENGTHS[i][1]}</MAX>\n'
        f'            <CENTRAL unit="nm">{_WAVELENGTHS[i][2]}</CENTRAL>\n'
        "          </Wavelength>\n"
        "        </Spectral_Information>\n"
        for i, band in enumerate(SPECTRAL_BANDS)
    )
    scl_list = ""
    if l2a:
        entries = "".join(
            "          <Scene_Classification_ID>\n"
            f"            <SCENE_CLASSIFICATION_TEXT>{text}</SCENE_CLASSIFICATION_TEXT>\n"
            f"            <SCENE_CLASSIFICATION_INDEX>{i}</SCENE_CLASSIFICATION_INDEX>\n"
            "          </Scene_Classification_ID>\n"
            for i, text in enumerate(_SCL_TEXT)
        )
        scl_list = (
            f"      <Scene_Classification_List>\n{entries}      </Scene_Classification_List>\n"
        )

    checks = ["FORMAT_CORRECTNESS", "GENERAL_QUALITY", "GEOMETRIC_QUALITY"]
    checks += ["L2A_QUALITY"] if l2a else []
    checks += ["RADIOMETRIC_QUALITY", "SENSOR_QUALITY"]
    check_xml = "".join(
        f'        <quality_check checkType="{c}">PASSED</quality_check>\n' for c in checks
    )
    if l2a:
        content_names = [
            "CLOUDY_PIXEL_OVER_LAND_PERCENTAGE", "NODATA_PIXEL_PERCENTAGE",
            *SCL_PERCENTAGE_ELEMENTS.values(),
        ]  # fmt: skip
        content = "".join(f"      <{n}>{_pct(pct[n])}</{n}>\n" for n in content_names)
        content_qi = (
            "    <Image_Content_QI>\n"
            f"{content}"
            "      <RADIATIVE_TRANSFER_ACCURACY>0.0</RADIATIVE_TRANSFER_ACCURACY>\n"
            "      <WATER_VAPOUR_RETRIEVAL_ACCURACY>0.0</WATER_VAPOUR_RETRIEVAL_ACCURACY>\n"
            "      <AOT_RETRIEVAL_ACCURACY>0.0</AOT_RETRIEVAL_ACCURACY>\n"
            "      <AOT_RETRIEVAL_METHOD>CAMS</AOT_RETRIEVAL_METHOD>\n"
            "      <GRANULE_MEAN_AOT>0.120000</GRANULE_MEAN_AOT>\n"
            "      <GRANULE_MEAN_WV>1.800000</GRANULE_MEAN_WV>\n"
            "    </Image_Content_QI>\n"
        )
        snow = ""
    else:
        content_qi = ""
        snow = (
            "    <Snow_Coverage_Assessment>"
            f"{_pct(pct['SNOW_ICE_PERCENTAGE'])}</Snow_Coverage_Assessment>\n"
        )

    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        f'<n1:{root} xmlns:n1="{ns}" xmlns:xsi="{_XSI}" xsi:schemaLocation="{ns}">\n'
        "  <n1:General_Info>\n"
        "    <Product_Info>\n"
        f"      <PRODUCT_START_TIME>{start}</PRODUCT_START_TIME>\n"
        f"      <PRODUCT_STOP_TIME>{start}</PRODUCT_STOP_TIME>\n"
        f"      <PRODUCT_URI>{spec.name}.SAFE</PRODUCT_URI>\n"
        f"      <PROCESSING_LEVEL>Level-{spec.level[1:]}</PROCESSING_LEVEL>\n"
        f"      <PRODUCT_TYPE>{spec.product_type}</PRODUCT_TYPE>\n"
        f"      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>\n"
        f"      <GENERATION_TIME>{_iso_us(spec.generation_time)}</GENERATION_TIME>\n"
        "      <PREVIEW_IMAGE_URL>Not applicable</PREVIEW_IMAGE_URL>\n"
        "      <PREVIEW_GEO_INFO>Not applicable</PREVIEW_GEO_INFO>\n"
        f'      <Datatake datatakeIdentifier="{spec.datatake_id}">\n'
        f"        <SPACECRAFT_NAME>Sentinel-{spec.platform[1:]}</SPACECRAFT_NAME>\n"
        "        <DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>\n"
        f"        <DATATAKE_SENSING_START>{start}</DATATAKE_SENSING_START>\n"
        f"        <SENSING_ORBIT_NUMBER>{spec.relative_orbit}</SENSING_ORBIT_NUMBER>\n"
        f"        <SENSING_ORBIT_DIRECTION>{spec.orbit_direction}</SENSING_ORBIT_DIRECTION>\n"
        "      </Datatake>\n"
        '      <Query_Options completeSingleTile="true">\n'
        "        <PRODUCT_FORMAT>SAFE_COMPACT</PRODUCT_FORMAT>\n"
        "      </Query_Options>\n"
        "      <Product_Organisation>\n"
        "        <Granule_List>\n"
        f'          <Granule datastripIdentifier="{spec.datastrip_id}" '
        f'granuleIdentifier="{spec.granule_id}" imageFormat="JPEG2000">\n'
        f"{files}\n"
        "          </Granule>\n"
        "        </Granule_List>\n"
        "      </Product_Organisation>\n"
        "    </Product_Info>\n"
        "    <Product_Image_Characteristics>\n"
        "      <Special_Values>\n"
        "        <SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>\n"
        "        <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX>\n"
        "      </Special_Values>\n"
        "      <Special_Values>\n"
        "        <SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT>\n"
        "        <SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX>\n"
        "      </Special_Values>\n"
        "      <Image_Display_Order>\n"
        "        <RED_CHANNEL>3</RED_CHANNEL>\n"
        "        <GREEN_CHANNEL>2</GREEN_CHANNEL>\n"
        "        <BLUE_CHANNEL>1</BLUE_CHANNEL>\n"
        "      </Image_Display_Order>\n"
        f"{quant}{offsets}"
        "      <Reflectance_Conversion>\n"
        f"        <U>{_earth_sun_u(spec.sensing_time)!r}</U>\n"
        f"        <Solar_Irradiance_List>\n{irradiance}        </Solar_Irradiance_List>\n"
        "      </Reflectance_Conversion>\n"
        f"      <Spectral_Information_List>\n{spectral}      </Spectral_Information_List>\n"
        "      <REFERENCE_BAND>3</REFERENCE_BAND>\n"
        f"{scl_list}"
        "    </Product_Image_Characteristics>\n"
        "  </n1:General_Info>\n"
        "  <n1:Geometric_Info>\n"
        "    <Product_Footprint>\n"
        "      <Product_Footprint>\n"
        "        <Global_Footprint>\n"
        f"          <EXT_POS_LIST>{footprint}</EXT_POS_LIST>\n"
        "        </Global_Footprint>\n"
        "      </Product_Footprint>\n"
        "      <RASTER_CS_TYPE>POINT</RASTER_CS_TYPE>\n"
        "      <PIXEL_ORIGIN>1</PIXEL_ORIGIN>\n"
        "    </Product_Footprint>\n"
        "    <Coordinate_Reference_System>\n"
        '      <GEO_TABLES version="1">EPSG</GEO_TABLES>\n'
        "      <HORIZONTAL_CS_TYPE>GEOGRAPHIC</HORIZONTAL_CS_TYPE>\n"
        "    </Coordinate_Reference_System>\n"
        "  </n1:Geometric_Info>\n"
        "  <n1:Auxiliary_Data_Info>\n"
        "    <PRODUCTION_DEM_TYPE>CopernicusDEM90</PRODUCTION_DEM_TYPE>\n"
        "  </n1:Auxiliary_Data_Info>\n"
        "  <n1:Quality_Indicators_Info>\n"
        f"    <Cloud_Coverage_Assessment>{_pct(pct['CLOUDY_PIXEL_PERCENTAGE'])}"
        "</Cloud_Coverage_Assessment>\n"
        f"{snow}"
        "    <Technical_Quality_Assessment>\n"
        "      <DEGRADED_ANC_DATA_PERCENTAGE>0.0</DEGRADED_ANC_DATA_PERCENTAGE>\n"
        "      <DEGRADED_MSI_DATA_PERCENTAGE>0</DEGRADED_MSI_DATA_PERCENTAGE>\n"
        "    </Technical_Quality_Assessment>\n"
        "    <Quality_Control_Checks>\n"
        f"      <Quality_Inspections>\n{check_xml}      </Quality_Inspections>\n"
        "      <Failed_Inspections/>\n"
        "    </Quality_Control_Checks>\n"
        f"{content_qi}"
        "  </n1:Quality_Indicators_Info>\n"
        f"</n1:{root}>\n"
    )


def _physical(band: str) -> str:
    """``B01`` -> ``B1`` as in ``physicalBand`` (``B8A`` unchanged)."""
    return band if band == "B8A" else f"B{int(band[1:])}"


# --------------------------------------------------------------------------------------
# GRANULE/*/MTD_TL.xml
# --------------------------------------------------------------------------------------


def tile_metadata(
    spec: ProductSpec,
    sizes: Mapping[int, int],
    pixel_sizes: Mapping[int, int],
    origin: tuple[float, float],
    centre_lonlat: tuple[float, float],
    stats: ContentStats,
) -> str:
    """Text of the granule's ``MTD_TL.xml``.

    ``sizes``/``pixel_sizes`` map the nominal resolution (10, 20, 60) to the
    raster side in pixels and the actual pixel size in metres.
    """
    l2a = spec.level == "L2A"
    ns = _NS_TL_L2A if l2a else _NS_TL_L1C
    root = "Level-2A_Tile_ID" if l2a else "Level-1C_Tile_ID"
    zone = spec.epsg % 100
    hemisphere = "N" if spec.epsg // 100 == 326 else "S"
    ulx, uly = (_num(v) for v in origin)
    size_xml = "".join(
        f'      <Size resolution="{r}">\n'
        f"        <NROWS>{sizes[r]}</NROWS>\n"
        f"        <NCOLS>{sizes[r]}</NCOLS>\n"
        "      </Size>\n"
        for r in (10, 20, 60)
    )
    geo_xml = "".join(
        f'      <Geoposition resolution="{r}">\n'
        f"        <ULX>{ulx}</ULX>\n"
        f"        <ULY>{uly}</ULY>\n"
        f"        <XDIM>{pixel_sizes[r]}</XDIM>\n"
        f"        <YDIM>{-pixel_sizes[r]}</YDIM>\n"
        "      </Geoposition>\n"
        for r in (10, 20, 60)
    )
    zenith, azimuth = _sun_angles(centre_lonlat[0], centre_lonlat[1], spec.sensing_time)
    view = "".join(
        f'        <Mean_Viewing_Incidence_Angle bandId="{i}">\n'
        f'          <ZENITH_ANGLE unit="deg">{4.5 + 0.05 * i:.4f}</ZENITH_ANGLE>\n'
        f'          <AZIMUTH_ANGLE unit="deg">{104.0 + 0.3 * i:.4f}</AZIMUTH_ANGLE>\n'
        "        </Mean_Viewing_Incidence_Angle>\n"
        for i in range(len(SPECTRAL_BANDS))
    )
    pct = stats.percentages
    if l2a:
        names = [
            "CLOUDY_PIXEL_PERCENTAGE", "CLOUDY_PIXEL_OVER_LAND_PERCENTAGE",
            "NODATA_PIXEL_PERCENTAGE", *SCL_PERCENTAGE_ELEMENTS.values(),
        ]  # fmt: skip
        content = "".join(f"      <{n}>{_pct(pct[n])}</{n}>\n" for n in names)
        content = content.replace(
            "      <NODATA_PIXEL_PERCENTAGE>",
            "      <DEGRADED_MSI_DATA_PERCENTAGE>0.000000</DEGRADED_MSI_DATA_PERCENTAGE>\n"
            "      <NODATA_PIXEL_PERCENTAGE>",
        )
        l1c_id = spec.granule_id.replace("_L2A_", "_L1C_")
        l1c_line = f'    <L1C_TILE_ID metadataLevel="Brief">{l1c_id}</L1C_TILE_ID>\n'
    else:
        content = (
            f"      <CLOUDY_PIXEL_PERCENTAGE>{_pct(pct['CLOUDY_PIXEL_PERCENTAGE'])}"
            "</CLOUDY_PIXEL_PERCENTAGE>\n"
            "      <DEGRADED_MSI_DATA_PERCENTAGE>0</DEGRADED_MSI_DATA_PERCENTAGE>\n"
        )
        l1c_line = ""
    archived = spec.generation_time + dt.timedelta(minutes=31, seconds=7)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        f'<n1:{root} xmlns:n1="{ns}" xmlns:xsi="{_XSI}" xsi:schemaLocation="{ns}">\n'
        "  <n1:General_Info>\n"
        f"{l1c_line}"
        f'    <TILE_ID metadataLevel="Brief">{spec.granule_id}</TILE_ID>\n'
        f'    <DATASTRIP_ID metadataLevel="Standard">{spec.datastrip_id}</DATASTRIP_ID>\n'
        '    <DOWNLINK_PRIORITY metadataLevel="Standard">NOMINAL</DOWNLINK_PRIORITY>\n'
        f'    <SENSING_TIME metadataLevel="Standard">{_iso_us(spec.sensing_time)}</SENSING_TIME>\n'
        '    <Archiving_Info metadataLevel="Expertise">\n'
        f"      <ARCHIVING_CENTRE>{spec.processing_centre}</ARCHIVING_CENTRE>\n"
        f"      <ARCHIVING_TIME>{_iso_us(archived)}</ARCHIVING_TIME>\n"
        "    </Archiving_Info>\n"
        "  </n1:General_Info>\n"
        "  <n1:Geometric_Info>\n"
        '    <Tile_Geocoding metadataLevel="Brief">\n'
        f"      <HORIZONTAL_CS_NAME>WGS84 / UTM zone {zone:02d}{hemisphere}</HORIZONTAL_CS_NAME>\n"
        f"      <HORIZONTAL_CS_CODE>EPSG:{spec.epsg}</HORIZONTAL_CS_CODE>\n"
        f"{size_xml}{geo_xml}"
        "    </Tile_Geocoding>\n"
        '    <Tile_Angles metadataLevel="Standard">\n'
        "      <Mean_Sun_Angle>\n"
        f'        <ZENITH_ANGLE unit="deg">{zenith:.10f}</ZENITH_ANGLE>\n'
        f'        <AZIMUTH_ANGLE unit="deg">{azimuth:.10f}</AZIMUTH_ANGLE>\n'
        "      </Mean_Sun_Angle>\n"
        f"      <Mean_Viewing_Incidence_Angle_List>\n{view}"
        "      </Mean_Viewing_Incidence_Angle_List>\n"
        "    </Tile_Angles>\n"
        "  </n1:Geometric_Info>\n"
        '  <n1:Quality_Indicators_Info metadataLevel="Standard">\n'
        f"    <Image_Content_QI>\n{content}    </Image_Content_QI>\n"
        "  </n1:Quality_Indicators_Info>\n"
        f"</n1:{root}>\n"
    )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
