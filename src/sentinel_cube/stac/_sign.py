"""Planetary Computer's signed URLs, and keeping signatures out of sight.

Planetary Computer serves its assets from Azure Blob Storage
(``https://<account>.blob.core.windows.net/...``), readable only with a SAS token
appended as a query string (``?st=...&se=...&sp=rl&sig=...``). An href that
already carries one (items searched with ``modifier=planetary_computer.sign_inplace``,
or signed with ``planetary_computer.sign``) is used as it is; an unsigned one is
signed with the optional ``planetary-computer`` package (``pip install
'sentinel-cube[pc]'``), which fetches a token per storage container from Planetary
Computer's token API and caches it. Tokens expire (about an hour): build the cube
close to computing it, or search again.

A signature is a secret: messages and reprs show hrefs through
:func:`sentinel_cube._cloud.redact` (no query string), and :func:`strip_signature`
removes it from hrefs kept in a products table.

Pure, apart from the optional package's token request when signing.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .._cloud import redact
from ..exceptions import MissingExtraError, SentinelCubeError

__all__ = [
    "PC_BLOB_SUFFIX",
    "is_planetary_computer",
    "is_signed",
    "sign_hrefs",
    "strip_signature",
]

#: Host suffix of Planetary Computer's storage accounts (Azure Blob Storage).
PC_BLOB_SUFFIX = ".blob.core.windows.net"

#: Query parameters that make an URL a signed (secret) one: Azure SAS, AWS and Google
#: pre-signed URLs, generic tokens.
_SIGNATURE_PARAMS = frozenset(
    {
        "sig", "se", "st", "sp", "sv", "sr", "skoid", "sktid", "skt", "ske", "sks", "skv",
        "spr", "srt", "ss", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
        "x-amz-date", "x-amz-expires", "x-amz-signedheaders", "x-amz-algorithm",
        "x-goog-signature", "x-goog-credential", "signature", "token", "access_token",
    }
)  # fmt: skip


def is_planetary_computer(href: str) -> bool:
    """Whether ``href`` is on Planetary Computer's blob storage.

    Examples
    --------
    >>> is_planetary_computer("https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/x.tif")
    True
    >>> is_planetary_computer("https://sentinel-cogs.s3.us-west-2.amazonaws.com/x.tif")
    False
    """
    parts = urlsplit(href)
    return parts.scheme in ("http", "https") and (parts.hostname or "").endswith(PC_BLOB_SUFFIX)


def is_signed(href: str) -> bool:
    """Whether ``href`` carries a SAS signature (a ``sig`` query parameter).

    Examples
    --------
    >>> is_signed("https://a.blob.core.windows.net/c/x.tif?st=2024&se=2025&sig=abc")
    True
    >>> is_signed("https://a.blob.core.windows.net/c/x.tif")
    False
    """
    return any(k.lower() == "sig" for k, _ in parse_qsl(urlsplit(href).query))


def strip_signature(href: str) -> str:
    """``href`` without a signing query string (SAS token, pre-signed URL); others unchanged.

    Examples
    --------
    >>> strip_signature("https://a.blob.core.windows.net/c/x.tif?st=1&sig=abc")
    'https://a.blob.core.windows.net/c/x.tif'
    >>> strip_signature("https://h/get?id=42")
    'https://h/get?id=42'
    """
    parts = urlsplit(href)
    if not parts.query:
        return href
    if any(k.lower() in _SIGNATURE_PARAMS for k, _ in parse_qsl(parts.query)):
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return href


def sign_hrefs(hrefs: Iterable[str], item_id: str) -> dict[str, str]:
    """Sign Planetary Computer ``hrefs`` of item ``item_id``: href -> signed href.

    Raises
    ------
    MissingExtraError
        ``planetary-computer`` is not installed (the message names the item and the
        extra).
    SentinelCubeError
        The token could not be obtained (no network, the token API failed).
    """
    hrefs = list(dict.fromkeys(hrefs))
    if not hrefs:
        return {}
    try:
        import planetary_computer
    except ImportError:
        raise MissingExtraError(
            "pc",
            "planetary-computer",
            f"STAC item {item_id!r} has Planetary Computer assets without a signature (SAS "
            f"token), e.g. {redact(hrefs[0])}; signing them (or sign the items yourself with "
            "planetary_computer.sign, or search with "
            "modifier=planetary_computer.sign_inplace)",
        ) from None
    signed = {}
    for href in hrefs:
        try:
            result = planetary_computer.sign(href)
        except Exception as error:  # noqa: BLE001 - requests errors, HTTP errors of the API
            raise SentinelCubeError(
                f"STAC item {item_id!r}: Planetary Computer did not sign {redact(href)} "
                f"({type(error).__name__}); check the network and retry, or sign the items "
                "yourself (planetary_computer.sign)"
            ) from None
        if not isinstance(result, str) or not is_signed(result):
            raise SentinelCubeError(
                f"STAC item {item_id!r}: planetary_computer.sign gave no signed URL for "
                f"{redact(href)}; update planetary-computer, or sign the items yourself"
            )
        signed[href] = result
    return signed
