"""read_product against real ESA product metadata (../shared/real-data/safe-metadata).

Expected values are taken from the XML text independently of the reader (regular
expressions on the raw file) and, where a folder has one, from the STAC item that
stactools built from the same product (``expected_output.json``).

The real folders hold metadata only; tests that need band files copy the XML to
``tmp_path`` and add empty placeholder band files (GDAL never opens them here).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import shutil
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shapely.geometry import MultiPolygon, Polygon

from sentinel_cube import mgrs
from sentinel_cube.bands import L1C_BANDS, L2A_BANDS, NATIVE_RESOLUTION
from sentinel_cube.safe import Product, read_product
from sentinel_cube.safe._manifest import parse_manifest
from sentinel_cube.safe._tile_mtd import parse_tile_metadata

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "real-data"
SAFE_DIR = REAL_DATA / "safe-metadata"
PRODUCTS = sorted(p.name for p in SAFE_DIR.iterdir() if p.is_dir()) if SAFE_DIR.is_dir() else []
T01KAB = "S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825.SAFE"
T46RER = "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE"
T36NXF = "S2B_MSIL2A_20221127T075159_N0400_R135_T36NXF_20221127T100500.SAFE"
T21JUK = "S2B_MSIL2A_20231217T135659_N0510_R067_T21JUK_20231217T175625"

#: STAC (stactools) asset key -> band at native resolution.
STAC_BANDS = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
    "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
    "cirrus": "B10", "swir16": "B11", "swir22": "B12", "scl": "SCL",
}  # fmt: skip

pytestmark = pytest.mark.realdata


def _folder(name: str) -> Path:
    if not SAFE_DIR.is_dir():
        pytest.skip("../shared/real-data/safe-metadata is not beside this checkout")
    return SAFE_DIR / name


def _each_product():
    return pytest.mark.parametrize(
        "name",
        PRODUCTS
        or [
            pytest.param(
                "absent",
                marks=pytest.mark.skip(
                    reason="../shared/real-data/safe-metadata is not beside this checkout"
                ),
            )
        ],
    )


# --------------------------------------------------------------------------- raw XML


def _mtd(folder: Path) -> Path:
    (found,) = [p for p in folder.iterdir() if re.fullmatch(r"MTD_MSIL(1C|2A)\.xml", p.name)]
    return found


def _tag(text: str, tag: str) -> str | None:
    match = re.search(rf"<(?:\w+:)?{tag}(?:\s[^>]*)?>\s*([^<]*?)\s*</", text)
    return match.group(1) if match else None


def _image_files(text: str) -> list[str]:
    return re.findall(r"<IMAGE_FILE>([^<]+)</IMAGE_FILE>", text)


def _offsets(text: str) -> dict[int, float]:
    found = re.findall(r'<(?:RADIO|BOA)_ADD_OFFSET band_id="(\d+)">\s*(-?[\d.]+)\s*<', text)
    return {int(i): float(v) for i, v in found}


def _iso(text: str) -> datetime:
    return datetime.strptime(text.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


def _listed_bands(text: str, level: str) -> list[str]:
    """Bands at native resolution that IMAGE_FILE lists, parsed independently."""
    bands = []
    for entry in _image_files(text):
        match = re.search(r"_(B\d\d|B8A|SCL)(?:_(\d\d)m)?$", entry)
        if match and (
            match.group(2) is None or int(match.group(2)) == NATIVE_RESOLUTION[match.group(1)]
        ):
            bands.append(match.group(1))
    return [b for b in (L1C_BANDS if level == "L1C" else L2A_BANDS) if b in bands]


def _materialize(folder: Path, dest: Path) -> Path:
    """Copy the metadata of a real product to ``dest`` and add placeholder band files.

    With a ``MTD_TL.xml`` the placeholders are empty (the reader never opens them).
    Without one the reader takes the grids from the band files, so each placeholder
    is a header-only (sparse) GeoTIFF of the full tile at the MGRS-rule corner: the
    real corner is unknown without the tile metadata. GDAL recognises the format by
    content, whatever the extension.
    """
    for src in folder.rglob("*"):
        if src.is_file() and src.suffix.lower() in {".xml", ".safe", ".json"}:
            target = dest / src.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    text = _mtd(folder).read_text()
    ext = ".tif" if 'imageFormat="GeoTIFF"' in text else ".jp2"
    georeferenced = not any(folder.glob("GRANULE/*/MTD_TL.xml"))
    tile = re.search(r"_T(\d\d[A-Z]{3})_", _tag(text, "PRODUCT_URI") or folder.name).group(1)
    for entry in _image_files(text):
        target = dest / (entry + ext)
        target.parent.mkdir(parents=True, exist_ok=True)
        match = re.search(r"_(B\d\d|B8A|SCL|TCI|AOT|WVP)(?:_(\d\d)m)?$", entry)
        if georeferenced and match:
            resolution = int(match.group(2) or NATIVE_RESOLUTION.get(match.group(1), 10))
            target.write_bytes(_header_only_tiff(tile, resolution))
        else:
            target.touch()
    return dest


@functools.cache
def _header_only_tiff(tile: str, resolution: int) -> bytes:
    """A sparse GeoTIFF of the whole tile at ``resolution`` (4 kB: no pixel written)."""
    from affine import Affine
    from rasterio.io import MemoryFile

    x, y = mgrs.tile_origin(tile)
    side = 109_800 // resolution
    with MemoryFile() as mem:
        with mem.open(
            driver="GTiff", width=side, height=side, count=1, dtype="uint16",
            crs=f"EPSG:{mgrs.tile_epsg(tile)}", tiled=True, sparse_ok=True,
            transform=Affine(resolution, 0, x, 0, -resolution, y),
        ):  # fmt: skip
            pass
        return mem.read()


def _zip(folder: Path, archive: Path, root: str, replace: dict[str, Path] | None = None) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for src in sorted(folder.rglob("*")):
            if src.is_file():
                rel = src.relative_to(folder).as_posix()
                data = (replace or {}).get(rel, src).read_bytes()
                method = zipfile.ZIP_STORED if rel.endswith((".jp2", ".tif")) else None
                zf.writestr(f"{root}/{rel}", data, compress_type=method)
    return archive


# --------------------------------------------------------------------------- every folder


def test_real_data_covers_the_advertised_variety():
    _folder("")
    baselines, levels = set(), set()
    for name in PRODUCTS:
        text = _mtd(SAFE_DIR / name).read_text()
        baselines.add(_tag(text, "PROCESSING_BASELINE"))
        levels.add(_tag(text, "PRODUCT_TYPE"))
    assert {"02.14", "03.01", "04.00", "05.09", "05.10"} <= baselines
    assert levels == {"S2MSI1C", "S2MSI2A"}
    assert T01KAB in PRODUCTS


@_each_product()
def test_metadata_matches_the_xml(name):
    folder = _folder(name)
    text = _mtd(folder).read_text()
    p = read_product(folder, require_bands=None)

    assert isinstance(p, Product)
    assert p.path == str(folder)
    assert p.product_id == _tag(text, "PRODUCT_URI").removesuffix(".SAFE")
    assert p.platform == "S2" + _tag(text, "SPACECRAFT_NAME")[-1]
    assert p.processing_level == _tag(text, "PROCESSING_LEVEL").replace("Level-", "L")
    assert p.producttype == _tag(text, "PRODUCT_TYPE")
    assert p.processing_baseline == _tag(text, "PROCESSING_BASELINE")
    assert p.sensing_start == _iso(_tag(text, "PRODUCT_START_TIME"))
    assert p.sensing_start.utcoffset().total_seconds() == 0
    assert p.generation_time == _iso(_tag(text, "GENERATION_TIME"))
    assert p.relative_orbit == int(_tag(text, "SENSING_ORBIT_NUMBER"))
    assert p.orbit_direction == _tag(text, "SENSING_ORBIT_DIRECTION")
    assert p.cloud_cover == pytest.approx(float(_tag(text, "Cloud_Coverage_Assessment")))
    tile = re.search(r"_T(\d\d[A-Z]{3})_", _tag(text, "PRODUCT_URI")).group(1)
    assert p.tile_id == tile
    assert p.epsg == mgrs.tile_epsg(tile)
    assert p.footprint.is_valid and not p.footprint.is_empty

    # No band file is in these folders: everything listed is reported missing.
    assert dict(p.bands) == {}
    assert list(p.missing_bands) == _listed_bands(text, p.processing_level)


@_each_product()
def test_percentages_match_the_xml(name):
    folder = _folder(name)
    text = _mtd(folder).read_text()
    p = read_product(folder, require_bands=None)
    raw = {t.lower(): float(v) for t, v in re.findall(r"<(\w+_PERCENTAGE)>([^<]+)<", text)}
    special = {
        "vegetation": p.vegetation,
        "not_vegetated": p.not_vegetated,
        "water": p.water,
        "snow_ice": p.snow_ice,
    }
    if p.processing_level == "L1C":
        assert set(special.values()) == {None}
    else:
        for key, value in special.items():
            assert value == pytest.approx(raw.pop(f"{key}_percentage"))
    assert dict(p.quality) == pytest.approx(raw)
    assert "degraded_msi_data_percentage" in p.quality


@_each_product()
def test_radiometry_matches_the_xml(name, tmp_path):
    folder = _folder(name)
    text = _mtd(folder).read_text()
    p = read_product(_materialize(folder, tmp_path / name), require_bands="all")
    offsets = _offsets(text)
    baseline = tuple(int(x) for x in p.processing_baseline.split("."))
    if baseline >= (4, 0):
        assert len(offsets) == 13 and set(offsets.values()) == {-1000.0}
    else:
        assert offsets == {}
    quant_tag = (
        "QUANTIFICATION_VALUE" if p.processing_level == "L1C" else "BOA_QUANTIFICATION_VALUE"
    )
    quantification = float(_tag(text, quant_tag))
    order = {
        f"B{m.group(2).zfill(2) if m.group(2) != '8A' else '8A'}": int(m.group(1))
        for m in re.finditer(r'bandId="(\d+)" physicalBand="B(\w+)"', text)
    }

    assert list(p.bands) == _listed_bands(text, p.processing_level)
    assert p.missing_bands == ()
    for band, bf in p.bands.items():
        assert bf.band == band
        assert bf.resolution == NATIVE_RESOLUTION[band]
        assert bf.nodata == 0 and bf.saturated == 65535
        if band == "SCL":
            assert (bf.offset, bf.quantification) == (0.0, 1.0)
        else:
            assert bf.quantification == quantification
            assert bf.offset == offsets.get(order.get(band, -1), 0.0)
        assert Path(bf.path).is_file() and Path(bf.path).is_absolute()


@pytest.mark.parametrize(
    "name",
    [n for n in PRODUCTS if (SAFE_DIR / n / "expected_output.json").is_file()]
    or [pytest.param("absent", marks=pytest.mark.skip(reason="no real data"))],
)
def test_agrees_with_stactools_item(name, tmp_path):
    folder = _folder(name)
    item = json.loads((folder / "expected_output.json").read_text())
    props = item["properties"]
    root = _materialize(folder, tmp_path / name)
    p = read_product(root)

    epsg = props.get("proj:epsg") or int(props["proj:code"].split(":")[1])
    assert p.epsg == epsg
    assert p.relative_orbit == props["sat:relative_orbit"]
    assert p.orbit_direction.lower() == props["sat:orbit_state"]
    assert p.processing_baseline == props["s2:processing_baseline"]
    assert p.producttype == props["s2:product_type"]
    assert p.product_id + ".SAFE" == props["s2:product_uri"]
    assert p.sensing_start == datetime.fromisoformat(props["datetime"])
    assert p.cloud_cover == pytest.approx(props["eo:cloud_cover"])

    compared = 0
    for key, asset in item["assets"].items():
        band = STAC_BANDS.get(key)
        if band is None:
            continue
        bf = p.band(band)
        assert Path(bf.path).relative_to(root).as_posix() == asset["href"].removeprefix("./")
        assert list(bf.transform)[:6] == pytest.approx(asset["proj:transform"][:6])
        assert list(bf.shape) == asset["proj:shape"]
        raster = asset["raster:bands"][0]
        if band != "SCL":
            assert bf.offset / bf.quantification == pytest.approx(raster["offset"])
            assert 1 / bf.quantification == pytest.approx(raster["scale"])
        compared += 1
    assert compared == len(p.bands)

    # s2:* percentages. stactools takes degraded_msi_data_percentage from MTD_TL,
    # read_product from the product MTD, so that one may differ.
    ours = dict(
        p.quality,
        vegetation_percentage=p.vegetation,
        water_percentage=p.water,
        not_vegetated_percentage=p.not_vegetated,
        snow_ice_percentage=p.snow_ice,
    )
    checked = 0
    for key, value in ours.items():
        stac = props.get(f"s2:{key}")
        if stac is None or value is None or key == "degraded_msi_data_percentage":
            continue
        assert value == pytest.approx(stac, abs=1e-6), key
        checked += 1
    assert checked >= (1 if p.processing_level == "L1C" else 8) - 1

    # Geometry: stactools rounds to 6 decimals.
    geometry = item["geometry"]
    if geometry["type"] == "Polygon":
        assert isinstance(p.footprint, Polygon)
        assert p.footprint.bounds == pytest.approx(tuple(item["bbox"]), abs=2e-6)
    else:
        theirs = sorted(
            MultiPolygon([Polygon(c[0]) for c in geometry["coordinates"]]).geoms,
            key=lambda g: g.bounds,
        )
        mine = sorted(p.footprint.geoms, key=lambda g: g.bounds)
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs, strict=True):
            assert a.bounds == pytest.approx(b.bounds, abs=2e-6)


# --------------------------------------------------------------------------- special cases


def test_antimeridian_tile_is_split():
    p = read_product(_folder(T01KAB), require_bands=None)
    assert isinstance(p.footprint, MultiPolygon)
    parts = list(p.footprint.geoms)
    assert len(parts) == 2
    xs = [x for part in parts for x, _ in part.exterior.coords]
    assert all(-180.0 <= x <= 180.0 for x in xs)
    east = [part for part in parts if part.bounds[0] >= 0]
    west = [part for part in parts if part.bounds[2] <= 0]
    assert len(east) == 1 and len(west) == 1
    assert east[0].bounds[2] == 180.0 and west[0].bounds[0] == -180.0
    assert east[0].bounds[0] == pytest.approx(179.2392, abs=1e-4)
    assert west[0].bounds[2] == pytest.approx(-179.71545, abs=1e-5)
    # Each part lies in the tile's latitude range.
    for part in parts:
        assert -17.3 < part.bounds[1] < part.bounds[3] < -16.2


def test_tile_geocoding_from_mtd_tl(tmp_path):
    p = read_product(_materialize(_folder(T46RER), tmp_path / T46RER))
    text = next((_folder(T46RER) / "GRANULE").glob("*/MTD_TL.xml")).read_text()
    assert p.epsg == int(_tag(text, "HORIZONTAL_CS_CODE").split(":")[1])
    for band, res in (("B02", 10), ("B05", 20), ("B01", 60), ("B10", 60)):
        block = re.search(rf'<Geoposition resolution="{res}">(.*?)</Geoposition>', text, re.S)[1]
        size = re.search(rf'<Size resolution="{res}">(.*?)</Size>', text, re.S)[1]
        bf = p.band(band)
        assert bf.resolution == res
        assert bf.shape == (int(_tag(size, "NROWS")), int(_tag(size, "NCOLS")))
        t = bf.transform
        assert (t.c, t.f, t.a, t.e) == tuple(
            float(_tag(block, k)) for k in ("ULX", "ULY", "XDIM", "YDIM")
        )
        assert (t.b, t.d) == (0.0, 0.0)


def test_without_mtd_tl_the_grid_comes_from_the_real_rasters(tmp_path):
    """T36NXF has no MTD_TL.xml but real 10, 20 and 60 m JP2s: the band grids are theirs.

    Its real corner (y = 100020) is 20 m off the MGRS rule, which the reader must not use.
    """
    rasterio = pytest.importorskip("rasterio")
    folder = _folder(T36NXF)
    granule = folder / "GRANULE"
    real = {
        "B02": granule / "QI_DATA" / "MSK_DETFOO_B04.jp2",  # 10 m
        "B05": granule / "IMG_DATA" / "T36NXF_20221127T075159_AOT_20m.jp2",  # 20 m
        "B01": granule / "QI_DATA" / "MSK_CLDPRB_60m.jp2",  # 60 m
    }
    root = _materialize(folder, tmp_path / "src")
    entries = _image_files(_mtd(folder).read_text())
    stems = {}
    for band in real:
        res = NATIVE_RESOLUTION[band]
        stems[band] = next(e for e in entries if e.endswith(f"_{band}_{res}m"))
    for path in root.rglob("*.jp2"):  # keep only the three bands backed by real files
        path.unlink()
    for stem in stems.values():
        (root / f"{stem}.jp2").write_bytes(b"")
    archive = _zip(
        root, tmp_path / "T36NXF.zip", T36NXF, replace={stems[b] + ".jp2": real[b] for b in real}
    )

    p = read_product(archive, require_bands=None)
    assert sorted(p.bands) == sorted(real)
    for band, bf in p.bands.items():
        assert bf.path == f"/vsizip/{archive}/{T36NXF}/{stems[band]}.jp2"
        with rasterio.open(real[band]) as ds:
            assert ds.crs.to_epsg() == p.epsg == 32636
            assert bf.shape == ds.shape
            assert bf.transform == ds.transform
        rule_x, rule_y = mgrs.tile_origin("36NXF")
        assert (bf.transform.c, bf.transform.f) != (rule_x, rule_y)


def test_metadata_only_folder_without_safe_suffix(tmp_path):
    """T21JUK: just MTD_MSIL2A.xml (and a real 12-band crop) in a folder without .SAFE."""
    rasterio = pytest.importorskip("rasterio")
    folder = _folder(T21JUK)
    p = read_product(folder, require_bands=None)
    assert p.product_id == T21JUK and p.tile_id == "21JUK" and p.epsg == 32721
    assert p.processing_level == "L2A" and p.processing_baseline == "05.10"
    root = _materialize(folder, tmp_path / T21JUK)
    full = read_product(root)
    b04 = full.band("B04")
    left, bottom, right, top = b04.bounds
    with rasterio.open(folder / "raster" / "20231217.tif") as crop:
        assert crop.crs.to_epsg() == full.epsg
        # The crop lies inside the tile and on its 10 m grid.
        assert left <= crop.bounds.left < crop.bounds.right <= right
        assert bottom <= crop.bounds.bottom < crop.bounds.top <= top
        assert (crop.bounds.left - left) % 10 == 0
    # The crop is inside the product footprint too.
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(full.epsg, 4326, always_xy=True).transform(
        crop.bounds.left, crop.bounds.top
    )
    assert full.footprint.buffer(0.01).contains(Polygon.from_bounds(lon, lat, lon, lat).centroid)


def test_mtd_file_path_reads_its_folder():
    folder = _folder(T46RER)
    assert read_product(folder / "MTD_MSIL1C.xml", require_bands=None) == read_product(
        folder, require_bands=None
    )


# --------------------------------------------------------------------------- zipped


def test_zipped_product_equals_folder(tmp_path):
    folder = _folder(T01KAB)
    root = _materialize(folder, tmp_path / "unzipped" / T01KAB)
    archive = _zip(root, tmp_path / f"{T01KAB.removesuffix('.SAFE')}.zip", T01KAB)

    from_folder = read_product(root)
    from_zip = read_product(archive)
    assert from_zip.path == str(archive)
    for f in dataclasses.fields(Product):
        if f.name not in ("path", "bands"):
            assert getattr(from_zip, f.name) == getattr(from_folder, f.name), f.name
    assert list(from_zip.bands) == list(from_folder.bands) == list(L2A_BANDS)
    for band, bf in from_zip.bands.items():
        rel = Path(from_folder.bands[band].path).relative_to(root).as_posix()
        assert bf.path == f"/vsizip/{archive}/{T01KAB}/{rel}"
        assert dataclasses.replace(bf, path="") == dataclasses.replace(
            from_folder.bands[band], path=""
        )


def test_zipped_metadata_only(tmp_path):
    """A zip of a metadata-only folder (no .SAFE suffix) needs require_bands=None."""
    folder = _folder(T21JUK)
    archive = tmp_path / "product.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(folder / "MTD_MSIL2A.xml", f"{T21JUK}/MTD_MSIL2A.xml")
    p = read_product(archive, require_bands=None)
    assert p.product_id == T21JUK and p.missing_bands == L2A_BANDS
    with pytest.raises(Exception, match="required band file"):
        read_product(archive)


# --------------------------------------------------------------------------- helpers, speed


def test_manifest_lists_the_band_files():
    folder = _folder(T46RER)
    entries = parse_manifest((folder / "manifest.safe").read_bytes())
    hrefs = {e.href for e in entries}
    assert "MTD_MSIL1C.xml" in hrefs
    for entry in _image_files(_mtd(folder).read_text()):
        assert entry + ".jp2" in hrefs
    assert all(e.size and e.checksum for e in entries)


def test_read_product_takes_milliseconds():
    folder = _folder(T46RER)
    tile = next((folder / "GRANULE").glob("*/MTD_TL.xml"))
    read_product(folder, require_bands=None)
    n = 20
    start = time.perf_counter()
    for _ in range(n):
        read_product(folder, require_bands=None)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 0.05, f"read_product took {per_call * 1000:.1f} ms"
    start = time.perf_counter()
    for _ in range(n):
        with tile.open("rb") as stream:
            geocoding = parse_tile_metadata(stream, tile.name)
    assert (time.perf_counter() - start) / n < 0.02
    assert geocoding.sizes[10] == (10980, 10980)
