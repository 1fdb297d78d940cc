"""One table of bad inputs: each raises a clear error naming the input and saying what to do.

The table holds 34 kinds of bad input. Each row builds its input in ``tmp_path``
(from one small synthetic product shared by the module), runs the public call a
user would run (``read_product``, ``open_cube``, ``open_cube(...).compute()``,
``to_zarr`` or ``open_zarr``)
and checks that:

- the error is the expected :class:`~sentinel_cube.exceptions.SentinelCubeError`
  subclass (never a raw ``ValueError``, ``KeyError``, ``UnicodeError``...);
- its message names the input at fault (the file, product, argument or search)
  and contains the fix (``download the product again``, ``rename``...);
- nothing was half-written: the files under ``tmp_path`` are the same before and
  after the failing call.

Other tests go deeper on some kinds (``test_safe_errors.py``, ``test_cube.py``,
``test_download_faults.py``); this file is the one place that lists them all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from sentinel_cube import LocalCatalog
from sentinel_cube._store_lock import LockRecord, StoreLockedError
from sentinel_cube.cube import open_cube
from sentinel_cube.exceptions import ProductError, SentinelCubeError
from sentinel_cube.safe import read_product
from sentinel_cube.store import open_zarr, to_zarr
from sentinel_cube.testing import ProductSpec, break_product, make_product

SCALE = 61  # 180 px at 10 m
RESOLUTION = 10 * SCALE
REDOWNLOAD = "download the product again"
BOMB = (
    '<!DOCTYPE b [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]>'
)


@dataclass(frozen=True)
class Kit:
    """Good inputs the rows start from (never modified: rows copy what they break)."""

    l2a: Path  # folder, bands B04 and B05
    l1c: Path  # folder, band B04


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Kit:
    root = tmp_path_factory.mktemp("kit")
    when = "2023-08-10T09:45:49.024Z"
    return Kit(
        l2a=make_product(
            root / "l2a", ProductSpec("34TCT", when), scale=SCALE, bands=["B04", "B05"],
            block_size=32,
        ),
        l1c=make_product(
            root / "l1c", ProductSpec("34TCT", when, level="L1C"), scale=SCALE, bands=["B04"],
            block_size=32,
        ),
    )  # fmt: skip


# --------------------------------------------------------------------------- helpers


def _copy(kit: Kit, tmp: Path, level: str = "l2a", name: str | None = None) -> Path:
    src = kit.l2a if level == "l2a" else kit.l1c
    dst = tmp / "in" / (name or src.name)
    shutil.copytree(src, dst)
    return dst


def _zip(folder: Path, archive: Path, rename: Callable[[str], str] = lambda n: n) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(
                    rename(f"{folder.name}/{path.relative_to(folder).as_posix()}")
                )
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    return archive


def _b04(product: Path) -> Path:
    return next(product.glob("GRANULE/*/IMG_DATA/**/*_B04*.jp2"))


def _mtd(product: Path) -> Path:
    return next(product.glob("MTD_MSIL*.xml"))


def _compute(path: Path, **kwargs) -> Callable[[], object]:
    return lambda: open_cube([path], bands=["B04"], resolution=RESOLUTION, **kwargs).compute()


# A builder makes the bad input under ``tmp`` and returns (the call, the name that
# the error must contain).
Builder = Callable[[Path, Kit], tuple[Callable[[], object], str]]


def nonexistent_path(tmp: Path, kit: Kit):
    path = tmp / "S2B_MSIL2A_nothing_here.SAFE"
    return lambda: read_product(path), str(path)


def not_a_product(tmp: Path, kit: Kit):
    path = tmp / "notes.txt"
    path.write_text("hello")
    return lambda: read_product(path), str(path)


def folder_without_mtd(tmp: Path, kit: Kit):
    product = _copy(kit, tmp)
    _mtd(product).unlink()
    return lambda: read_product(product), str(product)


def truncated_zip(tmp: Path, kit: Kit):
    archive = break_product(_zip(kit.l2a, tmp / "p.zip"), "truncate_zip")
    return lambda: read_product(archive), str(archive)


def zip_dotdot_member(tmp: Path, kit: Kit):
    archive = _zip(kit.l2a, tmp / "p.zip", lambda n: "../" + n)
    return lambda: read_product(archive, require_bands=["B04"]), str(archive)


def zip_absolute_member(tmp: Path, kit: Kit):
    archive = _zip(kit.l2a, tmp / "p.zip", lambda n: "/tmp/" + n)
    return lambda: read_product(archive, require_bands=["B04"]), str(archive)


def zip_bomb_ratio(tmp: Path, kit: Kit):
    product = _copy(kit, tmp)
    tile = next(product.glob("GRANULE/*/MTD_TL.xml"))
    text = tile.read_text()  # 20 MB of blanks after the declaration: deflates ~1000:1
    tile.write_text(text.replace("?>", "?>" + " " * 20_000_000, 1))
    archive = _zip(product, tmp / "bomb.zip")
    shutil.rmtree(product)
    return lambda: read_product(archive, require_bands=["B04"]), str(archive)


def zip_member_claims_huge_size(tmp: Path, kit: Kit):
    archive = _zip(kit.l2a, tmp / "p.zip")
    data = bytearray(archive.read_bytes())
    at = data.rindex(b"PK\x01\x02")  # last central directory entry: its uncompressed size
    data[at + 24 : at + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    return lambda: read_product(archive, require_bands=["B04"]), str(archive)


def zip_member_not_utf8(tmp: Path, kit: Kit):
    archive = _zip(kit.l2a, tmp / "p.zip", lambda n: "caf\u00e9/" + n)
    # The names keep zipfile's UTF-8 flag but get a byte that is not UTF-8.
    archive.write_bytes(archive.read_bytes().replace("caf\u00e9".encode(), b"caf\xe9\xff"))
    return lambda: read_product(archive, require_bands=["B04"]), str(archive)


def folder_name_not_utf8(tmp: Path, kit: Kit):
    parent = tmp / os.fsdecode(b"caf\xe9")
    shutil.copytree(kit.l2a, parent / kit.l2a.name)
    product = parent / kit.l2a.name
    shown = str(product).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return lambda: read_product(product, require_bands=["B04"]), shown


def malformed_xml(tmp: Path, kit: Kit):
    product = _copy(kit, tmp)
    break_product(product, "malform_xml")
    return lambda: read_product(product), _mtd(product).name


def entity_bomb(tmp: Path, kit: Kit):
    product = _copy(kit, tmp)
    mtd = _mtd(product)
    text = mtd.read_text().replace("?>", "?>" + BOMB, 1)
    mtd.write_text(text.replace("Sentinel-2B", "&f;", 1))
    return lambda: read_product(product), mtd.name


def external_entity(tmp: Path, kit: Kit):
    product = _copy(kit, tmp)
    mtd = _mtd(product)
    head = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    mtd.write_text(mtd.read_text().replace("?>", "?>" + head, 1).replace("05.09", "&xxe;", 1))
    return lambda: read_product(product), mtd.name


def missing_band_file(tmp: Path, kit: Kit):
    product = _copy(kit, tmp)
    gone = break_product(product, "drop_band", band="B04")
    return lambda: read_product(product, require_bands=["B04"]), gone.stem


def no_tile_metadata_nor_georeferencing(tmp: Path, kit: Kit):
    product = _copy(kit, tmp)
    next(product.glob("GRANULE/*/MTD_TL.xml")).unlink()
    b04 = _b04(product)
    b04.write_bytes(b"")  # an empty file: no georeferencing to fall back on
    return lambda: read_product(product, require_bands=["B04"]), b04.name


def band_the_level_lacks(tmp: Path, kit: Kit):
    return lambda: open_cube([kit.l2a], bands=["B10"]), "B10"


def unknown_band(tmp: Path, kit: Kit):
    return lambda: open_cube([kit.l2a], bands=["B99"]), "B99"


def unknown_resampling(tmp: Path, kit: Kit):
    return lambda: open_cube([kit.l2a], bands=["B04"], resampling="fancy"), "fancy"


def mixed_processing_levels(tmp: Path, kit: Kit):
    return lambda: open_cube([kit.l2a, kit.l1c], bands=["B04"]), "L1C"


def aoi_outside_every_tile(tmp: Path, kit: Kit):
    return lambda: open_cube([kit.l2a], bands=["B04"], aoi=(2.0, 48.0, 2.5, 48.5)), "aoi"


def empty_products(tmp: Path, kit: Kit):
    return lambda: open_cube([], bands=["B04"]), "products"


def empty_search(tmp: Path, kit: Kit):
    (tmp / "archive").mkdir()
    found = LocalCatalog(tmp / "archive").search(aoi=(18.9, 47.4, 19.2, 47.6))
    return lambda: open_cube(found, bands=["B04"]), "search"


def corrupt_jp2(tmp: Path, kit: Kit):
    product = _copy(kit, tmp)
    broken = break_product(product, "corrupt_jp2", band="B04")
    return _compute(product), broken.name


def truncated_jp2(tmp: Path, kit: Kit):
    product = _copy(kit, tmp)
    b04 = _b04(product)
    b04.write_bytes(b04.read_bytes()[: b04.stat().st_size // 2])
    return _compute(product), b04.name


def jp2_is_an_html_page(tmp: Path, kit: Kit):
    product = _copy(kit, tmp)
    b04 = _b04(product)
    b04.write_bytes(b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>")
    return _compute(product), b04.name


def jp2_of_the_wrong_size(tmp: Path, kit: Kit):
    product = _copy(kit, tmp)
    b04 = _b04(product)
    with rasterio.open(b04) as ds:
        profile = dict(crs=ds.crs, transform=ds.transform, dtype="uint16", count=1)
        half = ds.read(1)[: ds.height // 2, : ds.width // 2]
    b04.unlink()
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        with rasterio.open(
            b04, "w", driver="JP2OpenJPEG", width=half.shape[1], height=half.shape[0],
            QUALITY="100", REVERSIBLE="YES", **profile,
        ) as ds:  # fmt: skip
            ds.write(half, 1)
    return _compute(product), b04.name


@dataclass(frozen=True)
class Case:
    """One kind of bad input: how to build it, the error, and the fix its message gives."""

    build: Builder
    error: type[SentinelCubeError]
    fix: tuple[str, ...]

    @property
    def kind(self) -> str:
        return self.build.__name__


CASES: list[Case] = [
    # paths and archives
    Case(nonexistent_path, ProductError, ("does not exist", "check the path")),
    Case(not_a_product, ProductError, ("pass a .SAFE folder",)),
    Case(folder_without_mtd, ProductError, ("MTD_MSIL2A.xml", "pass the .SAFE folder")),
    Case(truncated_zip, ProductError, ("truncated or corrupt", REDOWNLOAD)),
    Case(zip_dotdot_member, ProductError, ("outside the archive", REDOWNLOAD)),
    Case(zip_absolute_member, ProductError, ("absolute path", REDOWNLOAD)),
    Case(zip_bomb_ratio, ProductError, ("zip bomb", REDOWNLOAD)),
    Case(zip_member_claims_huge_size, ProductError, ("4,294,967,280 bytes", REDOWNLOAD)),
    Case(zip_member_not_utf8, ProductError, ("not valid UTF-8", REDOWNLOAD)),
    Case(folder_name_not_utf8, ProductError, ("not UTF-8", "rename")),
    # metadata
    Case(malformed_xml, ProductError, ("not well-formed", "download it again")),
    Case(entity_bomb, ProductError, ("entit", "not parsed", "download it again")),
    Case(external_entity, ProductError, ("entit", "not parsed", "download it again")),
    Case(missing_band_file, ProductError, ("missing", REDOWNLOAD, "require_bands")),
    Case(no_tile_metadata_nor_georeferencing, ProductError, ("MTD_TL.xml", REDOWNLOAD)),
    # arguments of open_cube
    Case(band_the_level_lacks, SentinelCubeError, ("L2A",)),
    Case(unknown_band, SentinelCubeError, ("unknown Sentinel-2 band",)),
    Case(unknown_resampling, SentinelCubeError, ("resampling", "nearest")),
    Case(mixed_processing_levels, SentinelCubeError, ("mix processing levels", "L2A")),
    Case(aoi_outside_every_tile, SentinelCubeError, ("touches none", "check the AOI")),
    Case(empty_products, SentinelCubeError, ("empty",)),
    Case(empty_search, SentinelCubeError, ("matched nothing", "widen")),
    # pixels, read when the cube is computed
    Case(corrupt_jp2, ProductError, ("corrupt", "download it again")),
    Case(truncated_jp2, ProductError, ("truncated", "download it again")),
    Case(jp2_is_an_html_page, ProductError, ("corrupt", "download it again")),
    Case(jp2_of_the_wrong_size, ProductError, ("MTD_TL.xml", "download it again")),
]

# --------------------------------------------------------------------------- stores


def _store(tmp: Path, kit: Kit, **kwargs) -> Path:
    """A committed one-step store of the kit's L2A product."""
    store = tmp / "cube.zarr"
    cube = open_cube([kit.l2a], bands=["B04"], resolution=RESOLUTION, **kwargs)
    to_zarr(cube, store, progress=False)
    return store


def store_of_another_grid(tmp: Path, kit: Kit):
    store = _store(tmp, kit)
    other = open_cube([kit.l2a], bands=["B04"], resolution=2 * RESOLUTION)
    return lambda: to_zarr(other, store, progress=False), str(store)


def store_of_other_bands(tmp: Path, kit: Kit):
    store = _store(tmp, kit)
    other = open_cube([kit.l2a], bands=["B05"], resolution=RESOLUTION)
    return lambda: to_zarr(other, store, progress=False), str(store)


def store_of_other_units(tmp: Path, kit: Kit):
    store = _store(tmp, kit)
    other = open_cube([kit.l2a], bands=["B04"], resolution=RESOLUTION, units="dn")
    return lambda: to_zarr(other, store, progress=False), str(store)


def store_that_is_not_ours(tmp: Path, kit: Kit):
    store = tmp / "other.zarr"
    xr.Dataset({"v": ("x", np.arange(3))}).to_zarr(store, zarr_format=3, consolidated=False)
    cube = open_cube([kit.l2a], bands=["B04"], resolution=RESOLUTION)
    return lambda: to_zarr(cube, store, progress=False), str(store)


def folder_that_is_not_a_store(tmp: Path, kit: Kit):
    folder = tmp / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8")
    cube = open_cube([kit.l2a], bands=["B04"], resolution=RESOLUTION)
    return lambda: to_zarr(cube, folder, progress=False), str(folder)


def store_held_by_another_writer(tmp: Path, kit: Kit):
    store = _store(tmp, kit)
    holder = replace(LockRecord.mine(), host="worker-3.cluster", heartbeat=time.time() + 3600)
    (store / "_sentinel_cube" / ".lock").write_text(json.dumps(asdict(holder)))
    later = open_cube([kit.l2a], bands=["B04"], resolution=RESOLUTION)
    later = later.assign_coords(time=later.time + np.timedelta64(1, "D"))
    return lambda: to_zarr(later, store, progress=False, lock_timeout=0), str(store)


def open_a_path_that_is_no_store(tmp: Path, kit: Kit):
    path = tmp / "missing.zarr"
    return lambda: open_zarr(path), str(path)


def s3_endpoint_that_does_not_answer(tmp: Path, kit: Kit):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"s3://bucket/archive/{kit.l2a.name}.zip"
    options = {"key": "AKIAEXAMPLE", "secret": "s3cr3t-never-shown",
               "endpoint_url": f"http://127.0.0.1:{port}"}  # fmt: skip

    def call() -> object:
        try:
            return read_product(url, storage_options=options)
        except SentinelCubeError as error:
            assert "s3cr3t" not in str(error)
            raise

    return call, url


REMOTE_CASES: list[Case] = [
    Case(s3_endpoint_that_does_not_answer, ProductError, ("answers", "AWS_ENDPOINT_URL")),
]

STORE_CASES: list[Case] = [
    Case(store_of_another_grid, SentinelCubeError, ("grid", "write to a new store")),
    Case(store_of_other_bands, SentinelCubeError, ("bands", "write to a new store")),
    Case(store_of_other_units, SentinelCubeError, ("units differ", "another store")),
    Case(store_that_is_not_ours, SentinelCubeError, ("not a sentinel_cube", "another path")),
    Case(folder_that_is_not_a_store, SentinelCubeError, ("not a Zarr store", "another path")),
    Case(store_held_by_another_writer, StoreLockedError, ("worker-3.cluster", "lock_timeout")),
    Case(open_a_path_that_is_no_store, SentinelCubeError, ("not a Zarr store",)),
]

ALL_CASES = CASES + REMOTE_CASES + STORE_CASES


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.kind)
def test_bad_input_is_a_clear_error(case: Case, kit: Kit, tmp_path: Path):
    call, named = case.build(tmp_path, kit)
    before = _tree(tmp_path)
    with pytest.raises(SentinelCubeError) as info:
        call()
    error = info.value
    assert isinstance(error, case.error), (type(error), error)
    message = str(error)
    assert named in message, (named, message)
    for words in case.fix:
        assert words.lower() in message.lower(), (words, message)
    assert _tree(tmp_path) == before, "the failed call left files behind or changed some"


def test_the_docstring_counts_the_kinds():
    count = int(re.search(r"holds (\d+) kinds", __doc__ or "").group(1))
    assert count == len(ALL_CASES) == len({c.kind for c in ALL_CASES})
    assert count >= 15
