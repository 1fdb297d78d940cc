"""How each STAC provider names and describes the Sentinel-2 bands (data only).

Values as the providers publish them in their ``sentinel-2-l2a`` items: Earth Search
v1 asset keys are common names (``red``, ``nir08``, ``scl``) with ``-jp2`` twins;
Planetary Computer keys are ESA band names (``B04``, ``SCL``); CDSE keys are ESA band
names with the resolution (``B04_10m``). Wavelengths and widths are the providers'
own (CDSE's differ from the other two).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BAND_INFO", "BandInfo"]


@dataclass(frozen=True)
class BandInfo:
    """One band as the three providers describe it.

    Attributes
    ----------
    earth_search_key : str
        Earth Search v1 asset key (its ``eo:bands`` name too).
    common_name : str or None
        Earth Search ``common_name`` (``rededge`` for the three red-edge bands).
    description : str
        Earth Search and CDSE description (``"Red (band 4)"``).
    wavelength, fwhm : float
        Centre wavelength and full width at half maximum (micrometres), Earth Search
        and Planetary Computer.
    pc_description : str
        Planetary Computer description (``"Band 4 - Red"``).
    pc_common_name : str or None
        Planetary Computer ``common_name``.
    cdse_common_name : str or None
        CDSE ``eo:common_name``.
    cdse_wavelength, cdse_fwhm : float
        CDSE centre wavelength and width.
    """

    earth_search_key: str
    common_name: str | None
    description: str
    wavelength: float
    fwhm: float
    pc_description: str
    pc_common_name: str | None
    cdse_common_name: str | None
    cdse_wavelength: float
    cdse_fwhm: float


#: Every spectral band and SCL, in ESA order.
BAND_INFO: dict[str, BandInfo] = {
    "B01": BandInfo("coastal", "coastal", "Coastal aerosol (band 1)", 0.443, 0.027,
                    "Band 1 - Coastal aerosol", "coastal", "coastal", 0.443, 0.228),
    "B02": BandInfo("blue", "blue", "Blue (band 2)", 0.49, 0.098,
                    "Band 2 - Blue", "blue", "blue", 0.493, 0.267),
    "B03": BandInfo("green", "green", "Green (band 3)", 0.56, 0.045,
                    "Band 3 - Green", "green", "green", 0.56, 0.291),
    "B04": BandInfo("red", "red", "Red (band 4)", 0.665, 0.038,
                    "Band 4 - Red", "red", "red", 0.665, 0.342),
    "B05": BandInfo("rededge1", "rededge", "Red edge 1 (band 5)", 0.704, 0.019,
                    "Band 5 - Vegetation red edge 1", "rededge", "rededge071", 0.704, 0.357),
    "B06": BandInfo("rededge2", "rededge", "Red edge 2 (band 6)", 0.74, 0.018,
                    "Band 6 - Vegetation red edge 2", "rededge", "rededge075", 0.741, 0.374),
    "B07": BandInfo("rededge3", "rededge", "Red edge 3 (band 7)", 0.783, 0.028,
                    "Band 7 - Vegetation red edge 3", "rededge", "rededge078", 0.783, 0.399),
    "B08": BandInfo("nir", "nir", "NIR 1 (band 8)", 0.842, 0.145,
                    "Band 8 - NIR", "nir", "nir", 0.833, 0.454),
    "B8A": BandInfo("nir08", "nir08", "NIR 2 (band 8A)", 0.865, 0.033,
                    "Band 8A - Vegetation red edge 4", "rededge", "nir08", 0.865, 0.441),
    "B09": BandInfo("nir09", "nir09", "NIR 3 (band 9)", 0.945, 0.026,
                    "Band 9 - Water vapor", None, "nir09", 0.945, 0.479),
    "B10": BandInfo("cirrus", "cirrus", "SWIR - Cirrus (band 10)", 1.3735, 0.075,
                    "Band 10 - SWIR - Cirrus", "cirrus", "cirrus", 1.373, 0.404),
    "B11": BandInfo("swir16", "swir16", "SWIR 1 (band 11)", 1.61, 0.143,
                    "Band 11 - SWIR (1.6)", "swir16", "swir16", 1.614, 0.841),
    "B12": BandInfo("swir22", "swir22", "SWIR 2 (band 12)", 2.19, 0.242,
                    "Band 12 - SWIR (2.2)", "swir22", "swir22", 2.202, 1.16),
    "SCL": BandInfo("scl", None, "Scene classification map (SCL)", 0.0, 0.0,
                    "Scene classfication map (SCL)", None, None, 0.0, 0.0),
}  # fmt: skip
