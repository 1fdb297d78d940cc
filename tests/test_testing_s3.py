"""The loopback S3 server of :mod:`sentinel_cube.testing` (moto, extra ``demo-s3``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import sentinel_cube as sc
from sentinel_cube import MissingExtraError, SentinelCubeError
from sentinel_cube.testing import S3Server, default_specs, make_archive

SCALE = 61
BUCKET = "testing-s3"
BANDS = ["B04", "SCL"]


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    """One product as a ``.SAFE`` folder and as a ``.zip``."""
    root = tmp_path_factory.mktemp("testing-s3")
    specs = default_specs(tiles=("34TCT",), dates=("2023-06-06",))
    [folder] = make_archive(root / "safe", specs, scale=SCALE, bands=BANDS)
    [zipped] = make_archive(root / "zip", specs, scale=SCALE, bands=BANDS, zipped=True)
    return folder, zipped


def test_uploaded_products_read_in_place(products):
    folder, zipped = products
    with S3Server() as s3:
        assert s3.endpoint_url.startswith("http://127.0.0.1:")
        assert s3.create_bucket(BUCKET) == f"s3://{BUCKET}"
        s3.create_bucket(BUCKET)  # again: no error
        urls = [s3.upload(path, "Sentinel-2/MSI/L2A", BUCKET) for path in products]
        assert urls == [f"s3://{BUCKET}/Sentinel-2/MSI/L2A/{p.name}" for p in products]
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        keys = s3.keys(BUCKET, f"Sentinel-2/MSI/L2A/{folder.name}/")
        assert keys == [f"Sentinel-2/MSI/L2A/{folder.name}/{name}" for name in files]
        assert f"Sentinel-2/MSI/L2A/{zipped.name}" in s3.keys(BUCKET)
        before = s3.traffic
        options = s3.storage_options()
        for url, path in zip(urls, products, strict=True):
            remote = sc.read_product(url, require_bands=BANDS, storage_options=options)
            local = sc.read_product(path, require_bands=BANDS)
            assert remote.product_id == local.product_id
            np.testing.assert_array_equal(
                sc.open_cube([url], bands=["B04"], resolution=10 * SCALE,
                             storage_options=options).values,
                sc.open_cube([path], bands=["B04"], resolution=10 * SCALE).values,
            )  # fmt: skip
        used = s3.traffic - before
        assert used.requests > 0 and used.sent > 0 and used.received == 0
        assert options["endpoint_url"] == s3.endpoint_url
        assert s3.env()["AWS_ENDPOINT_URL"] == s3.endpoint_url


def test_a_stopped_server_removes_its_buckets(products, s3_server):
    with S3Server() as s3:
        s3.create_bucket(BUCKET)
        s3.upload(products[1], "zips", BUCKET)
    # moto's objects live in this process: another server of it sees what is left
    buckets = {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}
    assert BUCKET not in buckets
    s3.stop()  # stopping twice is harmless
    with pytest.raises(SentinelCubeError, match="not started"):
        s3.endpoint_url  # noqa: B018


def test_without_moto_a_missing_extra_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "moto.server", None)  # import moto.server fails
    extra = r"pip install 'sentinel-cube\[demo-s3\]'"
    with pytest.raises(MissingExtraError, match=extra) as caught:
        S3Server()
    assert caught.value.extra == "demo-s3" and "'moto'" in str(caught.value)
