"""Throttling and server errors of object storage (moto's S3 on the loopback).

The S3 server answers chosen requests with S3's own errors (``503 SlowDown``, ``500
InternalError``, see ``tests/_s3.py``). A few such answers are retried with back-off and
change nothing: metadata and pixels equal those of a fault-free read. A service that
throttles every request fails in bounded time with a :class:`SentinelCubeError` that
names the object's ``s3://`` URL (never a key, secret or signature) and says what to do;
once the service has recovered, the same read succeeds in the same process.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from _s3 import BUCKET, KEY_ID, SECRET, Fault, Request
from sentinel_cube import _cloud
from sentinel_cube.cube import open_cube
from sentinel_cube.exceptions import ProductError, SentinelCubeError
from sentinel_cube.safe import read_product
from sentinel_cube.testing import make_archive

SCALE = 61  # 180 px at 10 m
RESOLUTION = 10 * SCALE
KINDS = ["s3-folder", "s3-zip"]
DATES, TILES = ["2023-06-01"], ["34TCT"]
#: A hang guard, not a measure: a throttled read fails after a bounded number of retries.
BOUND_S = 60
WRONG_SECRET = "wrong-secret-Kx71Pq"


@dataclasses.dataclass(frozen=True)
class Local:
    folder: Path
    zip: Path

    def of(self, kind: str) -> Path:
        return self.folder if kind == "s3-folder" else self.zip


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Local:
    root = tmp_path_factory.mktemp("faults")
    (folder,) = make_archive(root / "safe", dates=DATES, tiles=TILES, scale=SCALE)
    (zipped,) = make_archive(root / "zips", dates=DATES, tiles=TILES, scale=SCALE, zipped=True)
    return Local(folder, zipped)


def _upload(server, product: Path) -> tuple[str, str]:
    """``product`` under a new prefix (nothing of it in any cache); its URL and prefix."""
    prefix = f"faults-{time.monotonic_ns()}"
    return server.upload(product, prefix), f"/{BUCKET}/{prefix}/"


def _cube(products, bands=("B04", "SCL")):
    return open_cube(products, bands=list(bands), resolution=RESOLUTION, units="dn")


def _assert_retried(requests: list[Request], failures: int) -> None:
    """``failures`` requests failed, and each was then made again and answered."""
    failed = [r for r in requests if r.fault]
    assert len(failed) == failures, [(r.method, r.path, r.fault) for r in requests]
    for bad in failed:
        assert any(
            (r.method, r.path, r.range) == (bad.method, bad.path, bad.range)
            and r.fault is None
            and r.at > bad.at
            for r in requests
        ), f"{bad} was not retried"


def _assert_clear(message: str, url: str) -> None:
    """The message names ``url``, says the service throttles and what to do; no secret."""
    assert url in message, message
    assert "throttling" in message and "retry later" in message and "fewer" in message
    for secret in (SECRET, KEY_ID, "Signature", "X-Amz", "/vsis3/"):
        assert secret not in message, message


# ------------------------------------------------------------------------ transient


@pytest.mark.parametrize("status", [503, 500])
@pytest.mark.parametrize("kind", KINDS)
def test_metadata_read_survives_transient_faults(s3_env, local, kind, status):
    url, prefix = _upload(s3_env, local.of(kind))
    start = len(s3_env.log)
    with s3_env.faults(Fault(status, path=prefix, times=2)):
        got = read_product(url)
    _assert_retried(s3_env.log[start:], 2)
    assert got == read_product(url)  # a fault-free read


@pytest.mark.parametrize(("kind", "status"), [("s3-folder", 503), ("s3-zip", 500)])
def test_pixel_read_survives_transient_faults(s3_env, local, kind, status):
    url, prefix = _upload(s3_env, local.of(kind))
    product = read_product(url)
    expected = _cube([local.of(kind)]).compute()
    start = len(s3_env.log)
    with s3_env.faults(Fault(status, path=prefix, method="GET", times=2)):
        got = _cube([product]).compute()
    requests = s3_env.log[start:]
    _assert_retried(requests, 2)
    first_retry = next(r for r in requests if r.fault is None and r.path == requests[0].path)
    assert first_retry.at - requests[0].at >= 0.4  # GDAL backs off (0.5 s, then more)
    assert np.array_equal(got.values, expected.values)
    assert (got.values > 0).any()


# ------------------------------------------------------------------------ persistent


@pytest.mark.parametrize("kind", KINDS)
def test_metadata_read_throttled_for_good(s3_env, local, kind):
    url, prefix = _upload(s3_env, local.of(kind))
    start, started = len(s3_env.log), time.monotonic()
    with s3_env.faults(Fault(503, path=prefix)), pytest.raises(SentinelCubeError) as caught:
        read_product(url)
    elapsed = time.monotonic() - started
    attempts = s3_env.log[start:]
    _assert_clear(str(caught.value), url)
    assert elapsed < BOUND_S
    # botocore's 4 attempts, s3fs's 2 calls of them (a HEAD's 503 is not retried by s3fs)
    assert 1 < len(attempts) <= 8 and all(r.fault == 503 for r in attempts)
    assert read_product(url) == read_product(url)  # once it recovers, retrying works


@pytest.mark.parametrize("kind", KINDS)
def test_pixel_read_throttled_for_good(s3_env, local, kind):
    url, prefix = _upload(s3_env, local.of(kind))
    cube = _cube([read_product(url)], bands=["B04"])
    start, started = len(s3_env.log), time.monotonic()
    with s3_env.faults(Fault(503, path=prefix)), pytest.raises(ProductError) as caught:
        cube.compute()
    elapsed = time.monotonic() - started
    attempts = [r for r in s3_env.log[start:] if r.method == "GET" and r.range]
    _assert_clear(str(caught.value), url)
    assert elapsed < BOUND_S
    # GDAL's attempts with growing delays, and one more to make it forget the failure
    retried = attempts[: 1 + int(_cloud.REMOTE_GDAL["GDAL_HTTP_MAX_RETRY"])]
    delays = [b.at - a.at for a, b in zip(retried, retried[1:], strict=False)]
    assert len(attempts) == len(retried) + 1 and len(delays) == 4, attempts
    assert min(delays) >= 0.4 and delays[-1] > 2 * delays[0], delays
    # GDAL does not remember the failure: once the service recovers, the cube computes
    expected = _cube([local.of(kind)], bands=["B04"]).compute()
    assert np.array_equal(cube.compute().values, expected.values)


# ------------------------------------------------------------------------ other failures


@pytest.mark.parametrize("kind", KINDS)
def test_pixel_read_with_wrong_keys(s3_env, local, kind, monkeypatch):
    url, _ = _upload(s3_env, local.of(kind))
    cube = _cube([read_product(url)], bands=["B04"])
    monkeypatch.setattr(_cloud, "_REGISTERED", {})  # keys other tests gave open_cube
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)
    with pytest.raises(ProductError) as caught:
        cube.compute()
    message = str(caught.value)
    assert url in message and "access was refused" in message and "credentials" in message
    assert WRONG_SECRET not in message and SECRET not in message and "/vsis3/" not in message


def test_pixel_read_of_a_deleted_zip(s3_env, local):
    url, _ = _upload(s3_env, local.zip)
    cube = _cube([read_product(url)], bands=["B04"])
    s3_env.client().delete_object(Bucket=BUCKET, Key=url[len(f"s3://{BUCKET}/") :])
    with pytest.raises(ProductError) as caught:
        cube.compute()
    message = str(caught.value)
    assert url in message and "does not exist" in message and "catalogue" in message
