"""Damage synthetic products in place, for error-handling tests."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from ...bands import NATIVE_RESOLUTION, normalize_band

__all__ = ["BREAK_MODES", "break_product"]

#: What :func:`break_product` can do.
BREAK_MODES: tuple[str, ...] = (
    "truncate_zip",
    "drop_mtd",
    "drop_band",
    "malform_xml",
    "corrupt_jp2",
)
# --------------------------------------------------------------------------------------
# break_product
# --------------------------------------------------------------------------------------


def _find_member(names: Iterable[str], pattern: str) -> str | None:
    regex = re.compile(pattern)
    hits = sorted(n for n in names if regex.search(n))
    return hits[0] if hits else None


def _band_pattern(band: str) -> str:
    res = NATIVE_RESOLUTION[band]
    return rf"/IMG_DATA/(R{res}m/)?T\w+_\d{{8}}T\d{{6}}_{band}(_{res}m)?\.jp2$"


def _rewrite_zip(zip_path: Path, member: str, transform: Callable[[bytes], bytes | None]) -> None:
    part = zip_path.with_name(zip_path.name + ".part")
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(part, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == member:
                new = transform(data)
                if new is None:
                    continue
                data = new
            dst.writestr(info, data, compress_type=info.compress_type)
    os.replace(part, zip_path)


def _malform(data: bytes) -> bytes:
    cut = data[: int(len(data) * 0.6)]
    broken = cut + b'\n<Unclosed attr="\n'
    with contextlib.suppress(ET.ParseError):
        ET.fromstring(broken)
        raise RuntimeError("malform_xml produced a parseable document")  # pragma: no cover
    return broken


def _decode_fails(path: Path) -> bool:
    """True if the JP2 opens but a single-threaded full read raises."""
    import rasterio
    from rasterio.errors import RasterioError

    with rasterio.Env(GDAL_NUM_THREADS="1", GDAL_PAM_ENABLED="NO"):
        try:
            ds = rasterio.open(path)
        except RasterioError:
            return False
        with ds:
            try:
                ds.read(1)
            except RasterioError:
                return True
    return False


def _corrupt_jp2_bytes(data: bytes) -> bytes:
    """Overwrite a tile-part header in the middle of the codestream with 0xFF bytes."""
    soc = data.find(b"\xff\x4f\xff\x51")
    sots = []
    pos = data.find(b"\xff\x90", soc + 4)
    while pos != -1:
        sots.append(pos)
        pos = data.find(b"\xff\x90", pos + 2)
    if soc < 0 or not sots:
        raise RuntimeError("not a JPEG 2000 codestream with tile parts")
    order = sorted(range(len(sots)), key=lambda i: abs(i - len(sots) // 2))
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.jp2"
        for i in order:
            start = sots[i]
            length = min(256, len(data) - 2 - start)
            candidate = data[:start] + b"\xff" * length + data[start + length :]
            probe.write_bytes(candidate)
            if _decode_fails(probe):
                return candidate
    raise RuntimeError("could not corrupt the JP2 so that decoding fails")  # pragma: no cover


def break_product(path: str | os.PathLike[str], how: str, *, band: str = "B04") -> Path:
    """Damage a product in place, for error-handling tests.

    Parameters
    ----------
    path : path
        A ``.SAFE`` folder or ``.zip`` written by :func:`make_product`.
    how : str
        One of :data:`BREAK_MODES`:

        - ``"truncate_zip"``: cut a zipped product to half its size (no central
          directory: ``zipfile.BadZipFile``). Zips only.
        - ``"drop_mtd"``: delete ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``.
        - ``"drop_band"``: delete the native-resolution JP2 of ``band`` (the
          metadata still lists it).
        - ``"malform_xml"``: cut the MTD at 60 % and append an unclosed tag, so
          XML parsing fails.
        - ``"corrupt_jp2"``: overwrite a tile-part header in the middle of the
          ``band`` JP2 with 0xFF bytes: the file opens (header intact) but
          decoding fails. Checked before returning: a read with
          ``GDAL_NUM_THREADS=1`` raises ``RasterioIOError``. Note that GDAL's
          multi-threaded JP2OpenJPEG reads of several tiles at once may log the
          error and return zeros instead of raising.
    band : str
        Band for ``drop_band`` / ``corrupt_jp2`` (default B04).

    Returns
    -------
    pathlib.Path
        For a folder, the file deleted or damaged; for a zip, the zip itself.

    Examples
    --------
    >>> import tempfile, zipfile
    >>> from sentinel_cube.testing import default_specs, make_product
    >>> spec = default_specs("34TCT", ["2023-07-06"])[0]
    >>> path = make_product(tempfile.mkdtemp(), spec, scale=61, bands=["B04"], zipped=True)
    >>> break_product(path, "truncate_zip") == path, zipfile.is_zipfile(path)
    (True, False)
    """
    path = Path(path)
    if how not in BREAK_MODES:
        raise ValueError(f"unknown break mode {how!r}; expected one of {', '.join(BREAK_MODES)}")
    band = normalize_band(band)
    is_zip = path.is_file() and zipfile.is_zipfile(path)
    if how == "truncate_zip":
        if not is_zip:
            raise ValueError(f"truncate_zip needs a zipped product, got {path}")
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            fh.truncate(size // 2)
        return path

    mtd_pattern = r"(^|/)MTD_MSIL(1C|2A)\.xml$"
    pattern = mtd_pattern if how in ("drop_mtd", "malform_xml") else _band_pattern(band)
    if is_zip:
        with zipfile.ZipFile(path) as zf:
            member = _find_member(zf.namelist(), pattern)
    else:
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        member = _find_member(["/" + n for n in names], pattern)
        member = member[1:] if member else None
    if member is None:
        what = "MTD" if pattern == mtd_pattern else f"{band} JP2"
        raise FileNotFoundError(f"{path}: no {what} to break")

    if how in ("drop_mtd", "drop_band"):
        action: Callable[[bytes], bytes | None] = lambda data: None  # noqa: E731
    elif how == "malform_xml":
        action = _malform
    else:
        action = _corrupt_jp2_bytes
    if is_zip:
        _rewrite_zip(path, member, action)
        return path
    target = path / member
    new = action(target.read_bytes())
    if new is None:
        target.unlink()
    else:
        target.write_bytes(new)
    return target
