"""The benchmark's store: checked before any work, emptied before each ingest."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import _cloud
from .._store_location import StoreLocation
from ..exceptions import SentinelCubeError

__all__ = ["check_store", "clear_store"]


def check_store(store: str | Path, replace: bool) -> None:
    """Fail early, naming the store and what to do, when the benchmark cannot use it.

    ``replace``: whether an existing store may be replaced (each ingest of the benchmark
    replaces the store). Object storage is reached once here, so missing keys, a missing
    bucket or an unreachable endpoint show before anything is measured.
    """
    loc = StoreLocation(store)
    try:
        exists = not loc.is_empty()  # a listing: fails without keys or endpoint
        is_store = loc.exists("zarr.json")
        if loc.is_remote and not loc.fs().exists(loc.key().split("/", 1)[0]):
            raise SentinelCubeError(
                f"the bucket of the store {loc.label!r} does not exist: create it, or check "
                "the URL and the endpoint (AWS_ENDPOINT_URL)"
            )
    except SentinelCubeError:
        raise
    except Exception as error:  # any failure to reach it is the user's to fix
        raise SentinelCubeError(
            f"cannot use the store {loc.label!r} ({_problem(error, loc)})"
        ) from error
    if exists and not is_store:
        raise SentinelCubeError(
            f"{loc.label!r} exists and is not a Zarr store: the benchmark would replace it; "
            "choose another --store"
        )
    if exists and not replace:
        raise SentinelCubeError(
            f"the store {loc.label!r} exists: the benchmark replaces it at each ingest; pass "
            "--overwrite to allow that, or choose another --store"
        )


def _problem(error: Exception, loc: StoreLocation) -> str:
    """What went wrong reaching a store, and what to do, without secrets."""
    names = {type(e).__name__ for e in _cloud.causes(error)}
    detail = _cloud.scrub(f"{type(error).__name__}: {error}", loc.secrets())
    if "NoCredentialsError" in names:
        return (
            "no S3 keys were found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE "
            "(and AWS_ENDPOINT_URL for a service other than AWS) here and on the workers"
        )
    if isinstance(error, PermissionError):
        return f"access denied: check the keys and that they may write there; {detail}"
    return f"{detail}; check the URL, the endpoint (AWS_ENDPOINT_URL) and the keys"


def clear_store(store: str | Path) -> None:
    """Remove the store, so that the next write starts from nothing (not timed)."""
    loc = StoreLocation(store)
    if loc.path is not None:
        shutil.rmtree(loc.path, ignore_errors=True)
        return
    fs = loc.fs()
    if fs.exists(loc.key()):
        fs.rm(loc.key(), recursive=True)
