"""Which asset of a STAC item holds which Sentinel-2 band: one table per provider.

Providers name the same band differently: Earth Search v1 uses common names
(``red``, ``nir08``, ``scl``, and ``red-jp2``... for the original JPEG 2000 files),
Planetary Computer the ESA names (``B04``, ``B8A``, ``SCL``), the Copernicus Data
Space Ecosystem's STAC the ESA names with the resolution of the file (``B04_10m``,
``B04_20m``, ``B04_60m``, ``SCL_20m``...; Level-1C items plain ``B04``).
:data:`PROVIDER_ASSET_KEYS` holds those tables, the keys of each band in the order
they are preferred; :func:`band_assets` applies them, and falls back on a generic
reading of the asset key (``B04``, ``b4``, ``B04_10m``, a common name, a ``-jp2``
suffix) or of the asset's ``eo:bands``/``bands`` names for catalogues not listed.

Choices, when an item offers a band several times:

- the file at the band's native resolution (``B04_10m`` rather than ``B04_20m``;
  without it, the finest one offered);
- a cloud-optimised GeoTIFF rather than a JPEG 2000 file (Earth Search's ``red``
  rather than ``red-jp2``: the COGs are served over HTTPS to anyone, the JP2 files sit
  in a requester-pays bucket).

Only the spectral bands and the Scene Classification are bands here (as for
``.SAFE`` products): ``visual``/``TCI``, ``AOT`` and ``WVP`` are not.

Pure: no IO.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..bands import NATIVE_RESOLUTION, SPECTRAL_BANDS

__all__ = [
    "BAND_NAMES",
    "COMMON_NAMES",
    "describe_assets",
    "PROVIDERS",
    "PROVIDER_ASSET_KEYS",
    "AssetChoice",
    "asset_band",
    "band_assets",
    "is_jp2",
]

#: Bands a STAC item can give a cube, in the order of :attr:`Product.bands`.
BAND_NAMES: tuple[str, ...] = SPECTRAL_BANDS + ("SCL",)

#: Earth Search's asset keys (STAC common names) -> ESA band.
COMMON_NAMES: dict[str, str] = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
    "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
    "cirrus": "B10", "swir16": "B11", "swir22": "B12", "scl": "SCL",
}  # fmt: skip
_COMMON_OF = {band: name for name, band in COMMON_NAMES.items()}


def _cdse_keys(band: str) -> tuple[str, ...]:
    native = NATIVE_RESOLUTION[band]
    others = [r for r in (10, 20, 60) if r > native]
    return (f"{band}_{native}m", *(f"{band}_{r}m" for r in others), band)


#: Providers whose items :func:`detect_provider <sentinel_cube.stac.detect_provider>`
#: recognises; ``"stac"`` is any other catalogue (generic key matching only).
PROVIDERS: tuple[str, ...] = ("earth-search", "planetary-computer", "cdse", "stac")

#: Provider -> ESA band -> asset keys, most preferred first.
#:
#: ============ ==================== ==================== ===============================
#: band         earth-search         planetary-computer   cdse
#: ============ ==================== ==================== ===============================
#: B01          coastal, coastal-jp2 B01                  B01_60m, B01
#: B02          blue, blue-jp2       B02                  B02_10m, B02_20m, B02_60m, B02
#: B03          green, green-jp2     B03                  B03_10m, B03_20m, B03_60m, B03
#: B04          red, red-jp2         B04                  B04_10m, B04_20m, B04_60m, B04
#: B05          rededge1(-jp2)       B05                  B05_20m, B05_60m, B05
#: B06          rededge2(-jp2)       B06                  B06_20m, B06_60m, B06
#: B07          rededge3(-jp2)       B07                  B07_20m, B07_60m, B07
#: B08          nir, nir-jp2         B08                  B08_10m, B08_20m, B08_60m, B08
#: B8A          nir08, nir08-jp2     B8A                  B8A_20m, B8A_60m, B8A
#: B09          nir09, nir09-jp2     B09                  B09_60m, B09
#: B10          cirrus, cirrus-jp2   B10                  B10_60m, B10
#: B11          swir16, swir16-jp2   B11                  B11_20m, B11_60m, B11
#: B12          swir22, swir22-jp2   B12                  B12_20m, B12_60m, B12
#: SCL          scl, scl-jp2         SCL                  SCL_20m, SCL_60m, SCL
#: ============ ==================== ==================== ===============================
PROVIDER_ASSET_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "earth-search": {b: (_COMMON_OF[b], f"{_COMMON_OF[b]}-jp2") for b in BAND_NAMES},
    "planetary-computer": {b: (b,) for b in BAND_NAMES},
    "cdse": {b: _cdse_keys(b) for b in BAND_NAMES},
}

_KEY_RE = re.compile(r"^(?:B(\d{1,2}|8A)|(SCL))(?:_(\d{2,3})M)?$")
_NOT_DATA_ROLES = frozenset({"thumbnail", "overview", "visual", "metadata"})


@dataclass(frozen=True)
class AssetChoice:
    """The asset chosen for one band of an item.

    Attributes
    ----------
    band : str
        ESA band name (``"B04"``, ``"SCL"``).
    key : str
        The asset key in the item (``"red"``, ``"B04_10m"``).
    asset : Mapping
        The asset (its JSON object).
    resolution : int or None
        Resolution the key or the asset announces (``_20m``, ``gsd``), if any.
    jp2 : bool
        Whether the asset is a JPEG 2000 file (else a GeoTIFF/COG).
    """

    band: str
    key: str
    asset: Mapping[str, Any]
    resolution: int | None
    jp2: bool


def is_jp2(key: str, asset: Mapping[str, Any]) -> bool:
    """Whether an asset is a JPEG 2000 file (by media type, href suffix or ``-jp2`` key).

    Examples
    --------
    >>> is_jp2("red-jp2", {}), is_jp2("B04_10m", {"type": "image/jp2"}), is_jp2("red", {})
    (True, True, False)
    """
    media = str(asset.get("type") or "").lower()
    href = str(asset.get("href") or "").split("?", 1)[0].lower()
    return key.lower().endswith(("-jp2", "_jp2")) or "jp2" in media or href.endswith(".jp2")


def asset_band(key: str, asset: Mapping[str, Any]) -> tuple[str, int | None] | None:
    """The ESA band an asset holds and the resolution its key names, or None.

    Reads the key (``"B04"``, ``"b4"``, ``"B04_20m"``, ``"red"``, ``"nir08-jp2"``),
    else the single entry of the asset's ``eo:bands`` or ``bands`` (STAC 1.1) by
    ``name`` or common name.

    Examples
    --------
    >>> asset_band("B04_20m", {}), asset_band("nir08-jp2", {}), asset_band("visual", {})
    (('B04', 20), ('B8A', None), None)
    >>> asset_band("band4", {"eo:bands": [{"name": "B04", "common_name": "red"}]})
    ('B04', None)
    """
    base = key.strip().upper()
    for suffix in ("-JP2", "_JP2"):
        base = base.removesuffix(suffix)
    if base.lower() in COMMON_NAMES:
        return COMMON_NAMES[base.lower()], None
    found = _key_band(base)
    if found is not None:
        return found
    entries = asset.get("eo:bands") or asset.get("bands") or []
    if isinstance(entries, list) and len(entries) == 1 and isinstance(entries[0], Mapping):
        entry = entries[0]
        for name in (entry.get("name"), entry.get("common_name"), entry.get("eo:common_name")):
            if not name:
                continue
            text = str(name).strip()
            if text.lower() in COMMON_NAMES:
                return COMMON_NAMES[text.lower()], None
            named = _key_band(text.upper())
            if named is not None:
                return named[0], None
    return None


def _key_band(text: str) -> tuple[str, int | None] | None:
    """``("B04", 20)`` from ``"B04_20M"``, ``("B04", None)`` from ``"B4"``; None otherwise."""
    match = _KEY_RE.match(text)
    if match is None:
        return None
    if match.group(2):
        return "SCL", int(match.group(3)) if match.group(3) else None
    number = match.group(1)
    band = "B8A" if number == "8A" else f"B{int(number):02d}"
    if band not in BAND_NAMES:
        return None
    return band, int(match.group(3)) if match.group(3) else None


def _is_data(asset: Mapping[str, Any]) -> bool:
    roles = {str(r).lower() for r in asset.get("roles") or []}
    if roles and roles <= _NOT_DATA_ROLES:
        return False
    media = str(asset.get("type") or "").lower()
    return not media or "tiff" in media or "jp2" in media or "octet-stream" in media


def _announced_resolution(asset: Mapping[str, Any], from_key: int | None) -> int | None:
    if from_key is not None:
        return from_key
    for value in (asset.get("gsd"), _raster_band(asset).get("spatial_resolution")):
        try:
            if value is not None and float(value) > 0:
                return round(float(value))
        except (TypeError, ValueError):
            continue
    return None


def _raster_band(asset: Mapping[str, Any]) -> Mapping[str, Any]:
    bands = asset.get("raster:bands")
    if isinstance(bands, list) and bands and isinstance(bands[0], Mapping):
        return bands[0]
    return {}


def band_assets(
    assets: Mapping[str, Mapping[str, Any]],
    provider: str = "stac",
    bands: Iterable[str] | None = None,
) -> dict[str, AssetChoice]:
    """The asset of each band an item offers, by :data:`BAND_NAMES` order.

    The keys of ``provider``'s table (:data:`PROVIDER_ASSET_KEYS`) are tried first,
    in their order; bands they do not find are looked for in every asset with
    :func:`asset_band`, preferring the band's native resolution (else the finest),
    then a COG over a JPEG 2000 file, then the first key.

    Parameters
    ----------
    assets
        The item's ``assets``.
    provider
        One of :data:`PROVIDERS`.
    bands
        Only look for these bands (ESA names); None: all of :data:`BAND_NAMES`.

    Examples
    --------
    >>> assets = {"B04_20m": {"href": "a.jp2"}, "B04_10m": {"href": "b.jp2"},
    ...           "SCL_20m": {"href": "c.jp2"}, "TCI_10m": {"href": "d.jp2"}}
    >>> {b: c.key for b, c in band_assets(assets, "cdse").items()}
    {'B04': 'B04_10m', 'SCL': 'SCL_20m'}
    """
    chosen: dict[str, AssetChoice] = {}
    looked_for = BAND_NAMES if bands is None else tuple(b for b in BAND_NAMES if b in set(bands))
    table = PROVIDER_ASSET_KEYS.get(provider, {})
    for band in looked_for:
        for key in table.get(band, ()):
            asset = assets.get(key)
            if isinstance(asset, Mapping) and asset.get("href") and _is_data(asset):
                found = asset_band(key, asset)
                chosen[band] = AssetChoice(
                    band, key, asset,
                    _announced_resolution(asset, found[1] if found else None),
                    is_jp2(key, asset),
                )  # fmt: skip
                break
    candidates: dict[str, list[AssetChoice]] = {}
    if len(chosen) == len(looked_for):
        return chosen
    for key, asset in assets.items():
        if not isinstance(asset, Mapping) or not asset.get("href"):
            continue
        found = asset_band(key, asset)
        if found is None or found[0] in chosen or found[0] not in looked_for:
            continue
        if not _is_data(asset):
            continue
        band, from_key = found
        choice = AssetChoice(
            band, key, asset, _announced_resolution(asset, from_key), is_jp2(key, asset)
        )
        candidates.setdefault(band, []).append(choice)
    for band, options in candidates.items():
        native = NATIVE_RESOLUTION[band]

        def rank(choice: AssetChoice, native: int = native) -> tuple[int, int, int]:
            res = choice.resolution
            return (
                0 if res in (None, native) else 1,
                res if res is not None else native,
                int(choice.jp2),
            )

        chosen[band] = min(options, key=rank)  # min keeps the first key among equals
    return {band: chosen[band] for band in BAND_NAMES if band in chosen}


def describe_assets(assets: Mapping[str, Any]) -> str:
    """``"key (band), key (-)..."``: an item's asset keys and the bands they map to.

    Examples
    --------
    >>> describe_assets({"red": {}, "scl": {}, "thumbnail": {}})
    'red (B04), scl (SCL), thumbnail (-)'
    """
    parts = []
    for key, asset in assets.items():
        found = asset_band(key, asset if isinstance(asset, Mapping) else {})
        parts.append(f"{key} ({found[0] if found else '-'})")
    return ", ".join(parts) or "no assets"
