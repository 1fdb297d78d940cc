"""File checksums: MD5, SHA3-256, SHA-256 and BLAKE3, and STAC multihash values.

Catalogues publish different algorithms: CDSE gives MD5 and BLAKE3 for whole
products, ``manifest.safe`` gives MD5 (SHA3-256 in newer products) per file,
STAC ``file:checksum`` is a multihash. :func:`strongest` picks the one to check.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["ALGORITHMS", "decode_multihash", "file_digest", "normalize_algorithm", "strongest"]

#: Algorithms understood, strongest (and fastest to check) first.
ALGORITHMS: tuple[str, ...] = ("BLAKE3", "SHA3-256", "SHA256", "MD5")

_ALIASES = {"SHA3_256": "SHA3-256", "SHA-256": "SHA256", "SHA2-256": "SHA256", "SHA_256": "SHA256"}
# multihash code (as hex varint) and digest length -> algorithm
_MULTIHASH = {"12": "SHA256", "16": "SHA3-256", "1e": "BLAKE3", "d501": "MD5"}


def normalize_algorithm(name: str) -> str:
    """Canonical algorithm name (``"md5"`` -> ``"MD5"``, ``"sha3_256"`` -> ``"SHA3-256"``).

    Examples
    --------
    >>> normalize_algorithm("sha3_256"), normalize_algorithm("Blake3")
    ('SHA3-256', 'BLAKE3')
    """
    upper = str(name).strip().upper()
    return _ALIASES.get(upper, upper)


def _hasher(algorithm: str) -> Any:
    if algorithm == "BLAKE3":
        import blake3

        return blake3.blake3()
    if algorithm == "SHA3-256":
        return hashlib.sha3_256()
    if algorithm == "SHA256":
        return hashlib.sha256()
    if algorithm == "MD5":
        return hashlib.md5()
    raise ValueError(f"unsupported checksum algorithm {algorithm!r}; expected one of {ALGORITHMS}")


def _available(algorithm: str) -> bool:
    if algorithm != "BLAKE3":
        return algorithm in ALGORITHMS
    try:
        import blake3  # noqa: F401
    except ImportError:
        return False
    return True


def file_digest(path: str | os.PathLike[str], algorithm: str, chunk: int = 1 << 20) -> str:
    """Lower-case hex digest of a file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> file_digest(p, "MD5")
    '900150983cd24fb0d6963f7d28e17f72'
    """
    hasher = _hasher(normalize_algorithm(algorithm))
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            hasher.update(block)
    return hasher.hexdigest().lower()


def strongest(checksums: Mapping[str, str] | None) -> tuple[str, str] | None:
    """The ``(algorithm, value)`` to verify: the strongest available one, or None.

    BLAKE3 is used only when the ``blake3`` package is installed.

    Examples
    --------
    >>> strongest({"MD5": "AB", "SHA3-256": "CD"})
    ('SHA3-256', 'cd')
    >>> strongest({}) is None
    True
    """
    if not checksums:
        return None
    normal = {normalize_algorithm(k): str(v).strip().lower() for k, v in checksums.items() if v}
    for algorithm in ALGORITHMS:
        if algorithm in normal and _available(algorithm):
            return algorithm, normal[algorithm]
    return None


def decode_multihash(value: str) -> tuple[str, str] | None:
    """``(algorithm, hex digest)`` of a hex multihash (STAC ``file:checksum``), or None.

    Examples
    --------
    >>> decode_multihash("1220" + "ab" * 32)[0]
    'SHA256'
    >>> decode_multihash("d50110" + "00" * 16)
    ('MD5', '00000000000000000000000000000000')
    """
    text = str(value).strip().lower()
    for code, algorithm in _MULTIHASH.items():
        if not text.startswith(code):
            continue
        rest = text[len(code) :]
        if len(rest) < 2:
            return None
        length = int(rest[:2], 16)
        digest = rest[2:]
        if len(digest) == 2 * length:
            return algorithm, digest
    return None
