"""``manifest.safe``: the files a product holds, with their sizes and checksums."""

from __future__ import annotations

from dataclasses import dataclass

from ._xml import local_name, parse_xml

__all__ = ["ManifestEntry", "parse_manifest"]


@dataclass(frozen=True)
class ManifestEntry:
    """One ``dataObject`` of ``manifest.safe``.

    Attributes
    ----------
    href : str
        Path relative to the product root, without a leading ``./``.
    size : int or None
        Size in bytes.
    checksum : str or None
        Checksum value (lower case hex).
    checksum_name : str or None
        Algorithm (``"MD5"``, ``"SHA3-256"``).
    """

    href: str
    size: int | None
    checksum: str | None
    checksum_name: str | None


def parse_manifest(data: bytes, name: str = "manifest.safe") -> tuple[ManifestEntry, ...]:
    """List the files that ``manifest.safe`` declares, with sizes and checksums.

    Useful to verify a download; :func:`~sentinel_cube.safe.read_product` does not
    need it.

    Examples
    --------
    >>> xml = (b'<XFDU><dataObjectSection><dataObject ID="a"><byteStream size="3">'
    ...        b'<fileLocation href="./MTD_MSIL1C.xml"/>'
    ...        b'<checksum checksumName="MD5">ABC</checksum></byteStream></dataObject>'
    ...        b'</dataObjectSection></XFDU>')
    >>> parse_manifest(xml)[0]
    ManifestEntry(href='MTD_MSIL1C.xml', size=3, checksum='abc', checksum_name='MD5')
    """
    root = parse_xml(data, name)
    entries = []
    for obj in root.iter():
        if local_name(obj.tag) != "byteStream":
            continue
        href = size = checksum = algorithm = None
        size_text = (obj.get("size") or "").strip()
        if size_text.isascii() and size_text.isdigit() and len(size_text) <= 20:
            size = int(size_text)  # optional: anything else (text, 5000 digits) is no size
        for child in obj:
            tag = local_name(child.tag)
            if tag == "fileLocation":
                href = child.get("href")
            elif tag == "checksum":
                checksum = (child.text or "").strip().lower() or None
                algorithm = child.get("checksumName")
        if href:
            href = href.strip()
            while href.startswith("./"):
                href = href[2:]
            entries.append(ManifestEntry(href, size, checksum, algorithm))
    return tuple(entries)
