"""Fuzzed product metadata: read_product raises a SentinelCubeError or returns a sane Product.

Real ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``, ``MTD_TL.xml`` and ``manifest.safe`` (from
the shared real-data folder when it is there, and from the synthetic generator
always) are mutated by hypothesis: truncated at a random byte, an element removed or
duplicated, a value replaced by text, a huge, negative or non-finite number, entity
declarations (billion laughs, external entities, DTDs) added, non-UTF-8 bytes
inserted. Whatever the mutation, :func:`read_product` either raises a
:class:`SentinelCubeError` whose message names the product and the file at fault,
or returns a :class:`Product` whose invariants hold. ``manifest.safe`` is not read
by ``read_product``; its mutations must leave the product unchanged, and
:func:`parse_manifest` (used by downloads) must raise only its own error.

Examples are derandomized so every run is the same; the whole file runs in well
under a minute.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel_cube import mgrs
from sentinel_cube.exceptions import SentinelCubeError
from sentinel_cube.safe import Product, read_product
from sentinel_cube.safe._manifest import parse_manifest
from sentinel_cube.safe._xml import MetadataError
from sentinel_cube.testing import ProductSpec, make_product

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "real-data"
#: Real products with a MTD_TL.xml and a manifest.safe, one per level.
REAL = (
    "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE",
    "S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825.SAFE",
)
EXAMPLES = 200  # per test: 4 x 200 examples, ~20 s in all

#: Replacement values for numeric fields: text, huge, negative, non-finite, odd forms.
BAD_NUMBERS = (
    "abc", "", " ", "1e308", "-1e308", "1e400", "1" + "0" * 400, "9" * 5000, "-1", "-10980",
    "0", "-0", "nan", "NaN", "inf", "-inf", "Infinity", "0x10", "1,5", "1_000", "\u0661\u0662",
    "10980.5", "2.5e-324", "-1000000000000000000000", "18446744073709551616",
)  # fmt: skip
BAD_TIMES = (
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2023-02-30T00:00:00Z",
    "yesterday", "", "2023-08-10T25:00:00Z", "+10000-01-01T00:00:00Z",
)  # fmt: skip
ENTITY_HEADS = (
    '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">',
    '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>',
    "<!DOCTYPE x [<!ELEMENT x ANY>]>",
    '<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
)
ENTITY_REFS = ("&xxe;", "&d;", "&a;", "&undefined;", "&#0;", "&#xD800;", "&#65;")
NON_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80", b"\xfe\xff", b"\x00", b"\xe9")

_ELEMENT_RE = re.compile(rb"<((?:[\w.-]+:)?[\w.-]+)[^<>]*?(?<!/)>")
_NUMBER_RE = re.compile(rb">(\s*-?\d[\d.eE+-]*\s*)</")
_ATTR_RE = re.compile(rb'(\w+)="(-?\d[\d.]*)"')
_TIME_RE = re.compile(rb">(\d{4}-\d\d-\d\dT[\d:.]+Z?)</")


class Base:
    """A product folder whose files are rewritten in place for each example."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = {  # kind -> file
            "mtd": next(root.glob("MTD_MSIL*.xml")),
            "tile": next(root.glob("GRANULE/*/MTD_TL.xml")),
            "manifest": root / "manifest.safe",
        }
        self.original = {kind: path.read_bytes() for kind, path in self.files.items()}
        self.expected = read_product(root)

    def __repr__(self) -> str:  # short, for hypothesis' falsifying examples
        return f"Base({self.root.name})"


def _bases(tmp: Path) -> Iterator[Base]:
    for level in ("L1C", "L2A"):  # synthetic products: always available, real JP2 bands
        spec = ProductSpec("34TCT", "2023-08-10T09:45:49.024Z", level=level)
        root = make_product(tmp / f"gen-{level}", spec, scale=183)
        yield Base(root)
    for name in REAL:  # real metadata, with empty placeholder band files (never opened)
        folder = REAL_DATA / "safe-metadata" / name
        if not folder.is_dir():
            continue
        root = tmp / "real" / name
        for src in folder.rglob("*"):
            if src.is_file() and src.suffix.lower() in (".xml", ".safe"):
                (root / src.relative_to(folder)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, root / src.relative_to(folder))
        mtd = next(root.glob("MTD_MSIL*.xml")).read_text()
        for entry in re.findall(r"<IMAGE_FILE>([^<]+)</IMAGE_FILE>", mtd):
            (root / f"{entry}.jp2").parent.mkdir(parents=True, exist_ok=True)
            (root / f"{entry}.jp2").touch()
        yield Base(root)


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> list[Base]:
    return list(_bases(tmp_path_factory.mktemp("fuzz")))


# --------------------------------------------------------------------------- mutations


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """One or two mutations of the XML ``data``."""
    for _ in range(draw(st.integers(1, 2))):
        data = draw(_one_mutation(data))
    return data


@st.composite
def _one_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    kind = draw(
        st.sampled_from(
            [
                "truncate",
                "remove",
                "duplicate",
                "number",
                "attribute",
                "time",
                "entity",
                "bytes",
                "text",
            ]  # fmt: skip
        )
    )
    elements = list(_ELEMENT_RE.finditer(data))
    if kind == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind in ("remove", "duplicate") and elements:
        start = draw(st.sampled_from(elements))
        end = data.find(b"</" + start.group(1) + b">", start.end())
        if end < 0:
            return data
        end += len(start.group(1)) + 3
        chunk = data[start.start() : end]
        if kind == "remove":
            return data[: start.start()] + data[end:]
        return data[:end] + chunk + data[end:]
    if kind == "number":
        numbers = list(_NUMBER_RE.finditer(data))
        if numbers:
            hit = draw(st.sampled_from(numbers))
            value = draw(st.sampled_from(BAD_NUMBERS)).encode()
            return data[: hit.start(1)] + value + data[hit.end(1) :]
    if kind == "attribute":
        attrs = list(_ATTR_RE.finditer(data))
        if attrs:
            hit = draw(st.sampled_from(attrs))
            value = draw(st.sampled_from(BAD_NUMBERS)).encode()
            return data[: hit.start(2)] + value + data[hit.end(2) :]
    if kind == "time":
        times = list(_TIME_RE.finditer(data))
        if times:
            hit = draw(st.sampled_from(times))
            value = draw(st.sampled_from(BAD_TIMES)).encode()
            return data[: hit.start(1)] + value + data[hit.end(1) :]
    if kind == "entity":
        head = draw(st.sampled_from(ENTITY_HEADS)).encode()
        declaration = data.find(b"?>")
        at = declaration + 2 if declaration >= 0 else 0
        data = data[:at] + head + data[at:]
        numbers = list(_NUMBER_RE.finditer(data))
        if numbers and draw(st.booleans()):
            hit = draw(st.sampled_from(numbers))
            ref = draw(st.sampled_from(ENTITY_REFS)).encode()
            data = data[: hit.start(1)] + ref + data[hit.end(1) :]
        return data
    if kind == "bytes":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from(NON_UTF8)) + data[at:]
    if kind == "text":  # arbitrary text in place of an element's value
        numbers = list(_NUMBER_RE.finditer(data))
        if numbers:
            hit = draw(st.sampled_from(numbers))
            text = draw(st.text(max_size=20)).encode("utf-8", "surrogatepass")
            return data[: hit.start(1)] + text + data[hit.end(1) :]
    return data


# --------------------------------------------------------------------------- checks


def _check_product(p: Product) -> None:
    """Invariants of any product read_product returns."""
    assert p.epsg == mgrs.tile_epsg(p.tile_id)
    assert 1 <= p.relative_orbit <= 143
    assert p.footprint.is_valid and not p.footprint.is_empty
    for value in (p.cloud_cover, p.vegetation, p.water, p.snow_ice, p.not_vegetated):
        assert value is None or math.isfinite(value)
    assert all(math.isfinite(v) for v in p.quality.values())
    for bf in p.bands.values():
        rows, cols = bf.shape
        assert isinstance(rows, int) and isinstance(cols, int) and rows > 0 and cols > 0
        t = bf.transform
        assert all(math.isfinite(v) for v in tuple(t)[:6])
        assert t.a > 0 and t.e < 0 and t.b == 0 and t.d == 0
        assert math.isfinite(bf.quantification) and bf.quantification > 0
        assert math.isfinite(bf.offset)
        assert 0 <= bf.nodata <= 65535 and 0 <= bf.saturated <= 65535


def _read_mutated(base: Base, kind: str, data: bytes, require: str | None) -> None:
    path = base.files[kind]
    path.write_bytes(data)
    try:
        try:
            product = read_product(base.root, require_bands=require)
        except SentinelCubeError as exc:
            message = str(exc)
            assert str(base.root) in message, message
            if kind == "tile" and isinstance(exc.__cause__, MetadataError):
                assert "MTD_TL.xml" in message, message
            if kind == "mtd" and isinstance(exc.__cause__, MetadataError):
                assert path.name in message, message
            return
        _check_product(product)
        if kind == "manifest":
            assert product == base.expected
    finally:
        path.write_bytes(base.original[kind])


_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("kind", ["mtd", "tile", "manifest"])
@_SETTINGS
@given(data=st.data())
def test_mutated_metadata(bases, kind, data):
    base = data.draw(st.sampled_from(bases), label="base")
    mutated = data.draw(mutations(base.original[kind]), label="mutated")
    require = data.draw(st.sampled_from(["all", None]), label="require_bands")
    _read_mutated(base, kind, mutated, require)


@_SETTINGS
@given(data=st.data())
def test_mutated_manifest_parses_or_raises_metadata_error(bases, data):
    base = data.draw(st.sampled_from(bases), label="base")
    mutated = data.draw(mutations(base.original["manifest"]), label="mutated")
    try:
        entries = parse_manifest(mutated, "P.SAFE/manifest.safe")
    except MetadataError as exc:
        assert "P.SAFE/manifest.safe" in str(exc)
        assert isinstance(exc, SentinelCubeError)
        return
    for entry in entries:
        assert entry.href and not entry.href.startswith("./")
        assert entry.size is None or entry.size >= 0


# --------------------------------------------------------------------------- regressions

#: Crashes and bad values the fuzzing found, as (file, pattern, replacement, needle).
FOUND = [
    ("mtd", rb"(QUANTIFICATION_VALUE[^>]*>)[^<]+", b"inf", "not a finite number"),
    ("mtd", rb"(QUANTIFICATION_VALUE[^>]*>)[^<]+", b"nan", "not a finite number"),
    ("mtd", rb"(ADD_OFFSET band_id=\"3\">)[^<]+", b"-1e308", "outside"),
    ("mtd", rb"(SENSING_ORBIT_NUMBER>)[^<]+", b"18446744073709551616", "outside"),
    ("mtd", rb"(SPECIAL_VALUE_INDEX>)[^<]+", b"-1", "outside"),
    ("mtd", rb"(Cloud_Coverage_Assessment>)[^<]+", b"Infinity", "not a finite number"),
    ("mtd", rb"(PRODUCT_START_TIME>)[^<]+", b"0001-01-01T00:00:00+05:00", "ISO 8601"),
    ("tile", rb"(NROWS>)[^<]+", b"-10980", "outside"),
    ("tile", rb"(ULX>)[^<]+", b"1e400", "not a finite number"),
    ("tile", rb"(XDIM>)[^<]+", b"0", "outside"),
    ("tile", rb"(YDIM>)[^<]+", b"60", "outside"),
    ("tile", rb"(HORIZONTAL_CS_CODE>)[^<]+", b"EPSG:32601", "EPSG:32601"),
]


@pytest.mark.parametrize(("kind", "pattern", "value", "needle"), FOUND)
def test_values_the_fuzzing_found_are_refused(bases, kind, pattern, value, needle):
    base = bases[0]
    data = base.original[kind]
    mutated, count = re.subn(pattern, lambda m: m.group(1) + value, data, count=1)
    assert count == 1
    base.files[kind].write_bytes(mutated)
    try:
        with pytest.raises(SentinelCubeError) as info:
            read_product(base.root)
    finally:
        base.files[kind].write_bytes(base.original[kind])
    message = str(info.value)
    assert str(base.root) in message and base.files[kind].name in message
    assert needle in message


def test_manifest_size_of_5000_digits_is_no_size():
    xml = (
        b'<XFDU><dataObject><byteStream size="' + b"9" * 5000 + b'">'
        b'<fileLocation href="./MTD_MSIL1C.xml"/></byteStream></dataObject></XFDU>'
    )
    (entry,) = parse_manifest(xml)
    assert (entry.href, entry.size) == ("MTD_MSIL1C.xml", None)
