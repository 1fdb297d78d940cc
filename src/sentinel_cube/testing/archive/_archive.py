"""Synthetic Sentinel-2 products on disk: ``.SAFE`` folders or hub-style zips, and archives."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ...bands import L1C_BANDS, NATIVE_RESOLUTION, TILE_SIZE_10M, normalize_band
from ._manifest import ManifestEntry, manifest
from ._metadata import product_metadata, tile_metadata
from ._rasters import _footprint, _Output, _write_rasters
from ._spec import (
    BUDAPEST_TILES,
    DEFAULT_DATES,
    ProductSpec,
    check_scale,
    default_specs,
)

__all__ = ["make_archive", "make_product"]
# --------------------------------------------------------------------------------------
# make_product / make_archive
# --------------------------------------------------------------------------------------


def _select_bands(spec: ProductSpec, bands: Iterable[str] | None) -> set[str] | None:
    if bands is None:
        return None
    available = {b for b, _ in spec.band_files(all_resolutions=True)}
    chosen = {normalize_band(b) for b in ([bands] if isinstance(bands, str) else bands)}
    unknown = chosen - available
    if unknown:
        raise ValueError(
            f"{spec.level} products have no band {', '.join(sorted(unknown))}; "
            f"available: {', '.join(sorted(available))}"
        )
    return chosen


def _zip_safe(safe: Path, zip_path: Path) -> None:
    part = zip_path.with_name(zip_path.name + ".part")
    base = safe.parent
    with zipfile.ZipFile(part, "w") as zf:
        for folder, dirs, files in os.walk(safe):
            dirs.sort()
            rel = Path(folder).relative_to(base).as_posix()
            zf.writestr(zipfile.ZipInfo(rel + "/"), b"")
            for name in sorted(files):
                path = Path(folder) / name
                method = zipfile.ZIP_STORED if name.endswith(".jp2") else zipfile.ZIP_DEFLATED
                zf.write(path, f"{rel}/{name}", compress_type=method)
    os.replace(part, zip_path)


def make_product(
    root: str | os.PathLike[str],
    spec: ProductSpec,
    *,
    scale: int = 30,
    bands: Iterable[str] | None = None,
    zipped: bool = False,
    block_size: int | None = None,
    all_resolutions: bool = False,
    checksum: str = "MD5",
) -> Path:
    """Write one synthetic product under ``root`` and return its path.

    Parameters
    ----------
    root : path
        Folder that receives ``NAME.SAFE`` (or ``NAME.zip``); created if needed.
        An existing product of the same name is replaced.
    spec : ProductSpec
    scale : int
        Pixel size multiplier; must divide 1830 (:data:`ALLOWED_SCALES`). The
        tile keeps its ground footprint; 10 m bands get ``10980 / scale`` pixels
        of ``10 * scale`` m. ``scale=1`` is full size.
    bands : iterable of str, optional
        Band files to write (``"B04"``, ``"SCL"``...); default all. The metadata
        still lists every file of the complete product (a partial download);
        ``manifest.safe`` lists the files actually present.
    zipped : bool
        Write ``NAME.zip`` holding ``NAME.SAFE/`` (as hubs deliver) and no folder.
    block_size : int, optional
        JPEG 2000 tile size (>= 32; GDAL clamps it to the image size); default
        ESA's (1024/640/192 px for 10/20/60 m) at ``scale=1``, 128 otherwise.
        Up to 5 resolution levels (``RESOLUTIONS``), fewer for tiny images.
    all_resolutions : bool
        L2A only: also write (and list) the 20 m and 60 m versions of bands, as
        real products carry them (point-sampled from the same scene).
    checksum : {"MD5", "SHA3-256"}
        ``checksumName`` of ``manifest.safe`` (older products use MD5, newer SHA3-256).

    Returns
    -------
    pathlib.Path
        ``root / "NAME.SAFE"`` or ``root / "NAME.zip"``.

    Examples
    --------
    >>> import tempfile
    >>> spec = default_specs(tiles="34TCT", dates=["2023-08-10"])[0]
    >>> path = make_product(tempfile.mkdtemp(), spec, scale=61, bands=["B04"])
    >>> path.name
    'S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_20230810T124346.SAFE'
    """
    scale = check_scale(scale)
    if block_size is not None and int(block_size) < 32:
        raise ValueError(f"block_size must be at least 32 (GDAL's minimum), got {block_size!r}")
    if checksum not in ("MD5", "SHA3-256"):
        raise ValueError(f"checksum must be 'MD5' or 'SHA3-256', got {checksum!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    chosen = _select_bands(spec, bands)
    outputs = [
        _Output(b, res, spec.band_path(b, res), chosen is None or b in chosen)
        for b, res in spec.band_files(all_resolutions)
    ]
    if chosen is not None:  # bands only at a non-listed resolution: nothing to write
        missing = chosen - {o.band for o in outputs}
        if missing:
            raise ValueError(f"band(s) {', '.join(sorted(missing))} need all_resolutions=True")
    footprint, centre = _footprint(spec)

    safe_name = f"{spec.name}.SAFE"
    final = root / (f"{spec.name}.zip" if zipped else safe_name)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=root))
    try:
        safe = work / safe_name
        granule = safe / "GRANULE" / spec.granule_name
        granule.mkdir(parents=True)
        stats = _write_rasters(spec, safe, outputs, scale, block_size)

        sizes = {r: TILE_SIZE_10M * 10 // (r * scale) for r in (10, 20, 60)}
        pixels = {r: r * scale for r in (10, 20, 60)}
        (granule / "MTD_TL.xml").write_text(
            tile_metadata(spec, sizes, pixels, spec.origin, centre, stats), encoding="utf-8"
        )
        mtd_name = f"MTD_MSI{spec.level}.xml"
        image_files = [o.relpath.removesuffix(".jp2") for o in outputs]
        (safe / mtd_name).write_text(
            product_metadata(spec, image_files, footprint, stats), encoding="utf-8"
        )
        entries = [
            ManifestEntry(f"S2_Level-{spec.level[1:]}_Product_Metadata", mtd_name, "text/xml")
        ]
        entries += [
            ManifestEntry(_object_id(spec, o), o.relpath, "application/octet-stream")
            for o in outputs
            if o.write
        ]
        entries.append(
            ManifestEntry(
                f"S2_Level-{spec.level[1:]}_Tile1_Metadata",
                f"GRANULE/{spec.granule_name}/MTD_TL.xml",
                "application/xml",
            )
        )
        (safe / "manifest.safe").write_text(
            manifest(spec, safe, entries, footprint, checksum), encoding="utf-8"
        )
        if final.is_dir():
            shutil.rmtree(final)
        elif final.exists():
            final.unlink()
        if zipped:
            _zip_safe(safe, final)
        else:
            os.replace(safe, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _object_id(spec: ProductSpec, out: _Output) -> str:
    if spec.level == "L2A":
        return f"IMG_DATA_Band_{out.band}_{out.resolution}m_Tile1_Data"
    same_res = [b for b in L1C_BANDS if NATIVE_RESOLUTION[b] == out.resolution]
    return f"IMG_DATA_Band_{out.resolution}m_{same_res.index(out.band) + 1}_Tile1_Data"


def make_archive(
    root: str | os.PathLike[str],
    specs: Iterable[ProductSpec] | None = None,
    *,
    tiles: str | Iterable[str] = BUDAPEST_TILES,
    dates: Iterable[Any] = DEFAULT_DATES,
    levels: str | Iterable[str] = ("L2A",),
    scale: int = 30,
    bands: Iterable[str] | None = None,
    zipped: bool = False,
    block_size: int | None = None,
    all_resolutions: bool = False,
    checksum: str = "MD5",
    baselines: str | Sequence[str] | Mapping[Any, str] | None = None,
) -> list[Path]:
    """Write a synthetic archive: ``specs``, or :func:`default_specs` of tiles x dates x levels.

    Returns the product paths in spec order. Options are those of :func:`make_product`.

    Examples
    --------
    >>> import tempfile
    >>> paths = make_archive(tempfile.mkdtemp(), dates=["2023-06-01"], scale=61, bands=["B04"])
    >>> [p.name[:26] for p in paths]
    ['S2B_MSIL2A_20230601T094549', 'S2B_MSIL2A_20230601T094549']
    """
    check_scale(scale)
    if specs is None:
        specs = default_specs(tiles, dates, levels, baselines=baselines)
    return [
        make_product(
            root, spec, scale=scale, bands=bands, zipped=zipped, block_size=block_size,
            all_resolutions=all_resolutions, checksum=checksum,
        )
        for spec in specs
    ]  # fmt: skip
