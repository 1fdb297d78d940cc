"""read_product on bad products: every failure is a ProductError naming the product.

The products are written to ``tmp_path`` from small hand-written XML, so these tests
need no real data.
"""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from sentinel_cube.exceptions import ProductError, SentinelCubeError
from sentinel_cube.safe import read_product

NAME = "S2B_MSIL1C_20230810T094549_N0509_R079_T34TCT_20230810T124346"
NAME_2A = "S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_20230810T124346"
GRANULE = "L1C_T34TCT_A033663_20230810T095256"
GRANULE_2A = "L2A_T34TCT_A033663_20230810T095256"
L1C = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
L2A_FILES = {
    10: ("B02", "B03", "B04", "B08", "TCI", "AOT", "WVP"),
    20: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12", "SCL", "TCI"),
    60: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12", "SCL"),
}


def _image_files(level: str) -> list[str]:
    if level == "L1C":
        stems = [f"T34TCT_20230810T094549_{b}" for b in (*L1C, "TCI")]
        return [f"GRANULE/{GRANULE}/IMG_DATA/{s}" for s in stems]
    return [
        f"GRANULE/{GRANULE_2A}/IMG_DATA/R{r}m/T34TCT_20230810T094549_{b}_{r}m"
        for r, bands in L2A_FILES.items()
        for b in bands
    ]


def _mtd(level: str = "L1C", *, offsets: bool = True, head: str = "", drop: str = "") -> str:
    l1c = level == "L1C"
    quant = (
        '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
        if l1c
        else '<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">10000'
        "</BOA_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>"
    )
    tag = "RADIO_ADD_OFFSET" if l1c else "BOA_ADD_OFFSET"
    offset_xml = (
        "".join(f'<{tag} band_id="{i}">-1000</{tag}>' for i in range(13)) if offsets else ""
    )
    images = "".join(f"<IMAGE_FILE>{f}</IMAGE_FILE>" for f in _image_files(level))
    qi = (
        ""
        if l1c
        else "<Image_Content_QI><VEGETATION_PERCENTAGE>12.5</VEGETATION_PERCENTAGE>"
        "<WATER_PERCENTAGE>1.5</WATER_PERCENTAGE><SNOW_ICE_PERCENTAGE>0</SNOW_ICE_PERCENTAGE>"
        "<NOT_VEGETATED_PERCENTAGE>3</NOT_VEGETATED_PERCENTAGE>"
        "<HIGH_PROBA_CLOUDS_PERCENTAGE>7.25</HIGH_PROBA_CLOUDS_PERCENTAGE></Image_Content_QI>"
    )
    name = NAME if l1c else NAME_2A
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>{head}
<n1:Level-{level[1:]}_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/x.xsd">
 <n1:General_Info><Product_Info>
  <PRODUCT_START_TIME>2023-08-10T09:45:49.024Z</PRODUCT_START_TIME>
  <PRODUCT_URI>{name}.SAFE</PRODUCT_URI>
  <PROCESSING_LEVEL>Level-{level[1:]}</PROCESSING_LEVEL>
  <PRODUCT_TYPE>S2MSI{level[1:]}</PRODUCT_TYPE>
  <PROCESSING_BASELINE>05.09</PROCESSING_BASELINE>
  <GENERATION_TIME>2023-08-10T12:43:46.000000Z</GENERATION_TIME>
  <Datatake><SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>
   <SENSING_ORBIT_NUMBER>79</SENSING_ORBIT_NUMBER>
   <SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION></Datatake>
  <Product_Organisation><Granule_List><Granule imageFormat="JPEG2000">{images}
  </Granule></Granule_List></Product_Organisation>
 </Product_Info>
 <Product_Image_Characteristics>
  <Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>
   <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
  <Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT>
   <SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>
  {quant}{offset_xml}
 </Product_Image_Characteristics></n1:General_Info>
 <n1:Geometric_Info><Product_Footprint><Product_Footprint><Global_Footprint>
  <EXT_POS_LIST>47.83 18.33 47.85 19.80 46.86 19.82 46.84 18.37 47.83 18.33</EXT_POS_LIST>
 </Global_Footprint></Product_Footprint></Product_Footprint></n1:Geometric_Info>
 <n1:Quality_Indicators_Info><Cloud_Coverage_Assessment>9.5</Cloud_Coverage_Assessment>
  <Technical_Quality_Assessment><DEGRADED_MSI_DATA_PERCENTAGE>0</DEGRADED_MSI_DATA_PERCENTAGE>
  </Technical_Quality_Assessment>{qi}</n1:Quality_Indicators_Info>
</n1:Level-{level[1:]}_User_Product>
"""
    if drop:
        xml = re.sub(rf"<{drop}[ >].*?</{drop}>", "", xml, count=1, flags=re.S)
        assert f"<{drop}" not in xml
    return xml


def _mtd_tl(scale: float = 1.0) -> str:
    blocks = "".join(
        f'<Size resolution="{r}"><NROWS>{n}</NROWS><NCOLS>{n}</NCOLS></Size>'
        for r, n in ((10, 10980), (20, 5490), (60, 1830))
    )
    blocks += "".join(
        f'<Geoposition resolution="{r}"><ULX>300000</ULX><ULY>5300040</ULY>'
        f"<XDIM>{r * scale:g}</XDIM><YDIM>{-r * scale:g}</YDIM></Geoposition>"
        for r in (10, 20, 60)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-1C_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/t.xsd">
 <n1:General_Info><TILE_ID>S2B_OPER_MSI_L1C_TL_2BPS_20230810T124346_A033663_T34TCT_N05.09</TILE_ID>
 </n1:General_Info>
 <n1:Geometric_Info><Tile_Geocoding><HORIZONTAL_CS_CODE>EPSG:32634</HORIZONTAL_CS_CODE>
 {blocks}</Tile_Geocoding>
 <Tile_Angles><Sun_Angles_Grid><Zenith><Values_List><VALUES>1 2 3</VALUES></Values_List></Zenith>
 </Sun_Angles_Grid></Tile_Angles></n1:Geometric_Info>
</n1:Level-1C_Tile_ID>
"""


def make_product(
    tmp_path: Path,
    level: str = "L1C",
    *,
    name: str | None = None,
    mtd: str | None = None,
    mtd_tl: str | None = None,
    bands: bool = True,
    skip: tuple[str, ...] = (),
) -> Path:
    """Write a small product folder; band files are empty placeholders."""
    name = name or (NAME if level == "L1C" else NAME_2A) + ".SAFE"
    root = tmp_path / name
    granule = root / "GRANULE" / (GRANULE if level == "L1C" else GRANULE_2A)
    granule.mkdir(parents=True)
    (root / f"MTD_MSI{level}.xml").write_text(mtd if mtd is not None else _mtd(level))
    (granule / "MTD_TL.xml").write_text(mtd_tl if mtd_tl is not None else _mtd_tl())
    if bands:
        for entry in _image_files(level):
            if not any(entry.endswith(f"_{b}") or f"_{b}_" in entry for b in skip):
                (root / f"{entry}.jp2").parent.mkdir(parents=True, exist_ok=True)
                (root / f"{entry}.jp2").touch()
    return root


def zip_product(root: Path, archive: Path, prefix: str | None = None) -> Path:
    prefix = root.name if prefix is None else prefix
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, f"{prefix}/{path.relative_to(root).as_posix()}".lstrip("/"))
    return archive


def _raises(path: Path | str, *needles: str, **kwargs) -> ProductError:
    with pytest.raises(ProductError) as info:
        read_product(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    assert info.value.path == str(path)
    for needle in needles:
        assert needle.lower() in message.lower(), (needle, message)
    assert isinstance(info.value, SentinelCubeError)
    return info.value


# --------------------------------------------------------------------------- the builder works


def test_minimal_products_read(tmp_path):
    p = read_product(make_product(tmp_path))
    assert (p.product_id, p.tile_id, p.epsg, p.relative_orbit) == (NAME, "34TCT", 32634, 79)
    assert list(p.bands) == list(L1C) and p.missing_bands == ()
    assert p.band("B04").offset == -1000 and p.band("B04").quantification == 10000
    q = read_product(make_product(tmp_path / "2a", "L2A"))
    assert list(q.bands)[-1] == "SCL" and q.band("SCL").resolution == 20
    assert (q.band("SCL").offset, q.band("SCL").quantification) == (0.0, 1.0)
    assert q.band("B01").path.endswith("/R60m/T34TCT_20230810T094549_B01_60m.jp2")
    assert q.band("B05").path.endswith("/R20m/T34TCT_20230810T094549_B05_20m.jp2")
    assert (q.vegetation, q.water, q.snow_ice, q.not_vegetated) == (12.5, 1.5, 0.0, 3.0)
    assert dict(q.quality) == {
        "degraded_msi_data_percentage": 0.0,
        "high_proba_clouds_percentage": 7.25,
    }


def test_pixel_size_comes_from_xdim_not_the_nominal_resolution(tmp_path):
    p = read_product(make_product(tmp_path, mtd_tl=_mtd_tl(scale=8.0)))
    b02 = p.band("B02")
    assert b02.resolution == 10 and b02.shape == (10980, 10980)
    assert (b02.transform.a, b02.transform.e) == (80.0, -80.0)
    assert p.band("B01").transform.a == 480.0


def test_without_offsets_the_offset_is_zero(tmp_path):
    p = read_product(make_product(tmp_path, mtd=_mtd(offsets=False)))
    assert {bf.offset for bf in p.bands.values()} == {0.0}


def test_without_mtd_tl_the_grid_needs_georeferenced_band_files(tmp_path):
    """Without MTD_TL.xml the grids come from the band files; empty ones cannot give them."""
    root = make_product(tmp_path)
    (root / "GRANULE" / GRANULE / "MTD_TL.xml").unlink()
    _raises(root, "MTD_TL.xml", "T34TCT_20230810T094549_B01.jp2", "download the product again")
    meta = make_product(tmp_path / "meta", bands=False)
    (meta / "GRANULE" / GRANULE / "MTD_TL.xml").unlink()
    p = read_product(meta, require_bands=None)
    assert p.epsg == 32634 and p.bands == {}


# --------------------------------------------------------------------------- bad paths


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "nothing_here.SAFE"
    _raises(missing, "does not exist")


def test_folder_that_is_not_a_safe(tmp_path):
    folder = tmp_path / "holiday"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(b"\xff\xd8")
    _raises(folder, "MTD_MSIL1C.xml", "not a Sentinel-2")


def test_safe_without_mtd(tmp_path):
    root = make_product(tmp_path)
    (root / "MTD_MSIL1C.xml").unlink()
    _raises(root, "no MTD_MSIL1C.xml or MTD_MSIL2A.xml")


def test_folder_holding_a_safe_points_to_it(tmp_path):
    make_product(tmp_path / "downloads")
    error = _raises(tmp_path / "downloads", "pass that folder")
    assert NAME in str(error)


def test_file_that_is_not_a_zip(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    error = _raises(path, "neither a .SAFE folder nor a zip")
    assert isinstance(error.__cause__, zipfile.BadZipFile)


def test_bad_require_bands_argument(tmp_path):
    with pytest.raises(ValueError, match="B99"):
        read_product(make_product(tmp_path), require_bands=["B04", "B99"])


# --------------------------------------------------------------------------- bad zips


@pytest.fixture
def archive(tmp_path) -> Path:
    return zip_product(make_product(tmp_path / "src"), tmp_path / f"{NAME}.zip")


def test_zip_reads_in_place(archive):
    p = read_product(archive)
    assert p.path == str(archive)
    assert p.band("B04").path == (
        f"/vsizip/{archive}/{NAME}.SAFE/GRANULE/{GRANULE}/IMG_DATA/T34TCT_20230810T094549_B04.jp2"
    )


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_zip(archive, keep):
    data = archive.read_bytes()
    archive.write_bytes(data[: int(len(data) * keep)])
    error = _raises(archive, "truncated or corrupt", "download the product again")
    assert error.__cause__ is not None or "zip" in str(error)


def test_zip_with_truncated_central_directory(archive):
    data = archive.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    cd_start = int.from_bytes(data[eocd + 16 : eocd + 20], "little")
    # Cut the middle of the central directory out, keep the end record.
    archive.write_bytes(data[: cd_start + 60] + data[eocd:])
    error = _raises(archive, "zip", "download the product again")
    assert isinstance(error.__cause__, zipfile.BadZipFile)


def test_zip_with_bad_crc(tmp_path):
    root = make_product(tmp_path / "src")
    archive = tmp_path / "bad_crc.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, f"{root.name}/{path.relative_to(root).as_posix()}")
    data = bytearray(archive.read_bytes())
    at = data.index(b"<PRODUCT_URI>")  # inside the stored MTD_MSIL1C.xml
    data[at + 1] = ord("Q")
    archive.write_bytes(bytes(data))
    error = _raises(archive, "MTD_MSIL1C.xml", "corrupt")
    assert isinstance(error.__cause__, zipfile.BadZipFile)


def test_zip_without_safe(tmp_path):
    archive = tmp_path / "docs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("docs/readme.txt", "hello")
    _raises(archive, "no MTD_MSIL1C.xml or MTD_MSIL2A.xml")


def test_zip_with_two_products(tmp_path):
    archive = zip_product(make_product(tmp_path / "a"), tmp_path / "two.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("OTHER.SAFE/MTD_MSIL2A.xml", _mtd("L2A"))
    _raises(archive, "several product metadata files")


def test_zip_with_missing_band(tmp_path):
    archive = zip_product(make_product(tmp_path / "src", skip=("B8A",)), tmp_path / "p.zip")
    _raises(archive, "B8A", "missing")
    assert read_product(archive, require_bands=None).missing_bands == ("B8A",)


# --------------------------------------------------------------------------- bad XML


def test_malformed_product_xml(tmp_path):
    root = make_product(tmp_path, mtd=_mtd()[:1500])
    error = _raises(root, "MTD_MSIL1C.xml", "not well-formed")
    assert error.__cause__ is not None


def test_malformed_tile_xml(tmp_path):
    root = make_product(tmp_path, mtd_tl=_mtd_tl().replace("</NROWS>", "</NROWZ>", 1))
    _raises(root, f"GRANULE/{GRANULE}/MTD_TL.xml", "not well-formed")


def test_malformed_xml_in_zip(tmp_path):
    root = make_product(tmp_path / "src", mtd=_mtd().replace("</PRODUCT_URI>", ""))
    archive = zip_product(root, tmp_path / "p.zip")
    _raises(archive, "MTD_MSIL1C.xml", "not well-formed")


@pytest.mark.parametrize(
    "element",
    ["PRODUCT_START_TIME", "QUANTIFICATION_VALUE", "EXT_POS_LIST", "SENSING_ORBIT_NUMBER"],
)
def test_missing_required_element(tmp_path, element):
    _raises(make_product(tmp_path, mtd=_mtd(drop=element)), f"<{element}>", "MTD_MSIL1C.xml")


def test_missing_geoposition(tmp_path):
    tl = _mtd_tl()
    start = tl.index('<Geoposition resolution="20">')
    tl = tl[:start] + tl[tl.index("</Geoposition>", start) + len("</Geoposition>") :]
    _raises(make_product(tmp_path, mtd_tl=tl), 'Geoposition resolution="20"', "MTD_TL.xml")


def test_invalid_values(tmp_path):
    root = make_product(tmp_path, mtd=_mtd().replace(">79<", ">seventy-nine<"))
    _raises(root, "SENSING_ORBIT_NUMBER", "not an integer")


BOMB = """<!DOCTYPE lolz [
 <!ENTITY lol "lollollollollollollollollollol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>"""


def test_entity_expansion_bomb_is_refused(tmp_path):
    mtd = _mtd(head=BOMB).replace("Sentinel-2B", "&lol9;")
    root = make_product(tmp_path, mtd=mtd)
    start = time.perf_counter()
    error = _raises(root, "MTD_MSIL1C.xml", "entit", "not parsed")
    assert time.perf_counter() - start < 1.0
    assert "lollol" not in str(error)


def test_external_entity_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    head = f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    root = make_product(tmp_path / "p", mtd=_mtd(head=head).replace("05.09", "&xxe;"))
    error = _raises(root, "MTD_MSIL1C.xml", "entit")
    assert "TOP-SECRET" not in str(error)


def test_external_entity_in_tile_metadata_is_refused(tmp_path):
    tl = _mtd_tl().replace("?>", '?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', 1)
    root = make_product(tmp_path, mtd_tl=tl.replace("EPSG:32634", "&e;"))
    error = _raises(root, "MTD_TL.xml", "entit")
    assert "root:" not in str(error)


def test_image_file_escaping_the_product_is_refused(tmp_path):
    mtd = _mtd().replace(
        f"GRANULE/{GRANULE}/IMG_DATA/T34TCT_20230810T094549_B04<",
        "GRANULE/../../../../etc/T34TCT_20230810T094549_B04<",
    )
    _raises(make_product(tmp_path, mtd=mtd), "outside the product")


# --------------------------------------------------------------------------- missing bands


def test_missing_band_file_with_require_all(tmp_path):
    root = make_product(tmp_path, skip=("B04", "B11"))
    error = _raises(root, "B04", "B11", "missing", "require_bands=None")
    assert f"GRANULE/{GRANULE}/IMG_DATA/T34TCT_20230810T094549_B04" in str(error)


def test_missing_band_file_with_require_none_and_lists(tmp_path):
    root = make_product(tmp_path, skip=("B04", "B11"))
    p = read_product(root, require_bands=None)
    assert p.missing_bands == ("B04", "B11")
    assert "B04" not in p.bands and len(p.bands) == 11
    with pytest.raises(ProductError, match="band B04 is not in this product"):
        p.band("B04")
    assert read_product(root, require_bands=["b2", "B8A"]).missing_bands == ("B04", "B11")
    _raises(root, "B04", require_bands=["B02", "b4"])
    _raises(root, "B11", require_bands="B11")


def test_requiring_a_band_the_level_does_not_have(tmp_path):
    _raises(make_product(tmp_path), "SCL", "lists no band", require_bands=["SCL"])


def test_metadata_only_product(tmp_path):
    root = make_product(tmp_path, bands=False)
    _raises(root, "13 required band file(s) missing")
    p = read_product(root, require_bands=None)
    assert p.bands == {} and p.missing_bands == L1C


def test_no_image_files_listed(tmp_path):
    root = make_product(tmp_path, mtd=re.sub(r"<IMAGE_FILE>.*?</IMAGE_FILE>", "", _mtd()))
    _raises(root, "lists no band image files", "<IMAGE_FILE>")
    assert read_product(root, require_bands=None).bands == {}


def test_flattened_granule_files_are_found(tmp_path):
    """Some archives move the image files out of the granule folder; they are found by name."""
    root = make_product(tmp_path)
    flat = root / "GRANULE" / "IMG_DATA"
    flat.mkdir()
    b04 = root / "GRANULE" / GRANULE / "IMG_DATA" / "T34TCT_20230810T094549_B04.jp2"
    b04.rename(flat / b04.name)
    p = read_product(root)
    assert p.band("B04").path == str(flat / b04.name)


def test_geotiff_band_files(tmp_path):
    root = make_product(tmp_path, bands=False)
    img = root / "GRANULE" / GRANULE / "IMG_DATA"
    img.mkdir()
    for band in L1C:
        (img / f"T34TCT_20230810T094549_{band}.tif").touch()
    p = read_product(root)
    assert p.band("B8A").path.endswith("_B8A.tif") and p.missing_bands == ()


def test_product_pickles(tmp_path):
    import pickle

    p = read_product(zip_product(make_product(tmp_path / "src", "L2A"), tmp_path / "p.zip"))
    assert pickle.loads(pickle.dumps(p)) == p


def test_zip_without_zip_suffix_opens_in_gdal(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.io import MemoryFile

    root = make_product(tmp_path / "src")
    with MemoryFile() as mem:
        profile = dict(width=4, height=3, count=1, dtype="uint16", crs="EPSG:32634")
        transform = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5300040.0)
        with mem.open(driver="GTiff", transform=transform, **profile) as ds:
            ds.write(np.full((1, 3, 4), 7, "uint16"))
        tif = mem.read()
    b04 = root / "GRANULE" / GRANULE / "IMG_DATA" / "T34TCT_20230810T094549_B04.jp2"
    b04.unlink()
    b04.with_suffix(".tif").write_bytes(tif)
    archive = zip_product(root, tmp_path / "download.part")
    p = read_product(archive)
    assert p.band("B04").path.startswith(f"/vsizip/{{{archive}}}/")
    with rasterio.open(p.band("B04").path) as ds:
        assert ds.read(1).tolist() == [[7] * 4] * 3


def test_old_multi_tile_format_is_named(tmp_path):
    folder = tmp_path / "S2A_OPER_PRD_MSIL1C_PDMC_20160101T000000_R001_V20160101T000000.SAFE"
    folder.mkdir()
    (folder / "S2A_OPER_MTD_SAFL1C_PDMC_20160101T000000_R001_V20160101T000000.xml").write_text(
        "<x/>"
    )
    _raises(folder, "old multi-tile format")
    archive = zip_product(folder, tmp_path / "old.zip")
    _raises(archive, "old multi-tile format")


def test_older_level2a_element_names_are_accepted(tmp_path):
    """PSD 14.2 (L2A baselines 02.04-02.06) prefixes names with L2A_ and _2A."""
    mtd = _mtd("L2A")
    for new, old in (
        ("IMAGE_FILE", "IMAGE_FILE_2A"),
        ("PRODUCT_URI", "PRODUCT_URI_2A"),
        ("BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE"),
        ("Product_Info", "L2A_Product_Info"),
    ):
        mtd = mtd.replace(f"<{new}>", f"<{old}>").replace(f"</{new}>", f"</{old}>")
        mtd = mtd.replace(f"<{new} ", f"<{old} ")
    mtd = mtd.replace(
        "<L2A_Product_Info>", "<L2A_Product_Info><PRODUCT_URI_1C>L1C.SAFE</PRODUCT_URI_1C>"
    )
    p = read_product(make_product(tmp_path, "L2A", mtd=mtd))
    assert p.product_id == NAME_2A
    assert len(p.bands) == 13 and p.band("B04").quantification == 10000
