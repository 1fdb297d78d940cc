"""CDSE search results read in place from CDSE's S3 (moto's S3 on the loopback).

The products are uploaded as ``.SAFE`` folders under a bucket named ``eodata``, as CDSE
stores them; the loopback CDSE catalogue publishes matching ``S3Path`` values; the real
:class:`~sentinel_cube.CDSECatalog` searches it and ``open_cube`` reads the products
from S3 with the ``CDSE_S3_*`` variables, pixel for pixel as from local copies.
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from botocore.exceptions import ClientError

from _s3 import KEY_ID, SECRET
from sentinel_cube import CDSECatalog
from sentinel_cube.catalog._cdse_query import parse_products
from sentinel_cube.catalog._http import RetryPolicy
from sentinel_cube.cube import open_cube
from sentinel_cube.exceptions import SentinelCubeError
from sentinel_cube.schema import S3PATH
from sentinel_cube.testing import CDSEServer, make_archive

SCALE = 61  # 180 px at 10 m
RESOLUTION = 10 * SCALE
BANDS = ["B02", "B04", "B8A", "SCL"]
PREFIX = "Sentinel-2/MSI/tests"
FAST = RetryPolicy(attempts=2, backoff=0.01, timeout=10.0)
_S3_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_S3_ENDPOINT",
    "AWS_HTTPS",
    "AWS_VIRTUAL_HOSTING",
    "CDSE_S3_ACCESS_KEY",
    "CDSE_S3_SECRET_KEY",
    "CDSE_S3_ENDPOINT",
)


@pytest.fixture(scope="module")
def archive(s3_server, tmp_path_factory):
    """The same products as local ``.SAFE`` folders, on S3 (``eodata``) and as zips."""
    root = tmp_path_factory.mktemp("cdse-s3")
    dates = ["2023-06-01", "2023-06-06"]
    folders = make_archive(root / "safe", dates=dates, scale=SCALE)
    zips = make_archive(root / "zips", dates=dates, scale=SCALE, zipped=True)
    assert [f.name for f in folders] == [z.name.replace(".zip", ".SAFE") for z in zips]
    client = s3_server.client()
    try:
        client.create_bucket(Bucket="eodata")
    except ClientError:  # created by an earlier module of the session
        pass
    for folder in folders:
        s3_server.upload(folder, PREFIX, bucket="eodata")
    return folders, zips


@pytest.fixture()
def products(archive):
    """A CDSE search of the loopback catalogue whose ``S3Path`` values point at S3."""
    with CDSEServer(archive[1], s3_prefix=f"s3://eodata/{PREFIX}") as server:
        yield CDSECatalog(retry=FAST, **server.catalog_kwargs).search()


@pytest.fixture()
def no_s3(monkeypatch):
    """An environment without any S3 setting."""
    for name in _S3_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture()
def cdse_env(s3_server, no_s3):
    """Only the three CDSE variables, pointing at the loopback S3."""
    no_s3.setenv("CDSE_S3_ACCESS_KEY", KEY_ID)
    no_s3.setenv("CDSE_S3_SECRET_KEY", SECRET)
    no_s3.setenv("CDSE_S3_ENDPOINT", s3_server.endpoint_url)
    return s3_server


def _assert_same_cube(remote, local):
    assert remote.dims == local.dims and remote.shape == local.shape
    for name in ("time", "band", "x", "y"):
        np.testing.assert_array_equal(remote[name].values, local[name].values)
    values, expected = remote.values, local.values
    assert values.dtype == expected.dtype
    assert values.tobytes() == expected.tobytes()  # bit for bit, NaNs included
    assert np.isfinite(values).any()


def test_search_carries_s3_paths(products, archive):
    folders = archive[0]
    assert len(products) == len(folders)
    expected = {f.name.removesuffix(".SAFE"): f"s3://eodata/{PREFIX}/{f.name}" for f in folders}
    assert products[S3PATH].to_dict() == expected
    assert products["path"].isna().all()


def test_open_cube_reads_cdse_search_from_s3(products, archive, cdse_env):
    before = len(cdse_env.log)
    cube = open_cube(products, bands=BANDS, resolution=RESOLUTION)
    local = open_cube(archive[0], bands=BANDS, resolution=RESOLUTION)
    _assert_same_cube(cube, local)
    paths = "\n".join(cube["product_path"].values.tolist())
    assert f"s3://eodata/{PREFIX}/" in paths
    requests = cdse_env.log[before:]
    assert any(r.path.startswith("/eodata/") and r.range for r in requests)  # ranged reads
    assert not any(r.method == "GET" and r.path.rstrip("/") == "/eodata" for r in requests)


def test_open_cube_in_place_with_aws_settings(products, archive, s3_env):
    """AWS keys with an endpoint read the same way (and win over CDSE_S3_*)."""
    cube = open_cube(products, bands=["B04"], resolution=RESOLUTION)
    _assert_same_cube(cube, open_cube(archive[0], bands=["B04"], resolution=RESOLUTION))


def test_open_cube_in_place_with_storage_options(products, archive, s3_server, no_s3):
    options = {"key": KEY_ID, "secret": SECRET, "endpoint_url": s3_server.endpoint_url}
    cube = open_cube(products, bands=["B04"], resolution=RESOLUTION, storage_options=options)
    _assert_same_cube(cube, open_cube(archive[0], bands=["B04"], resolution=RESOLUTION))


def test_local_path_wins_over_s3path(products, archive, no_s3):
    table = products.copy()
    table["path"] = [str(f) for f in archive[0]]
    cube = open_cube(table, bands=["B04"], resolution=RESOLUTION)  # no S3 settings needed
    assert "s3://" not in "\n".join(cube["product_path"].values.tolist())


def test_without_credentials_a_clear_error(products, no_s3):
    with pytest.raises(SentinelCubeError) as caught:
        open_cube(products, bands=["B04"], resolution=RESOLUTION)
    message = str(caught.value)
    assert products.index[0] in message
    for text in ("catalog.download(products", "CDSE_S3_ACCESS_KEY", "CDSE_S3_SECRET_KEY"):
        assert text in message
    assert "eodata-s3keysmanager.dataspace.copernicus.eu" in message


def test_aws_keys_without_endpoint_do_not_mask_the_problem(products, no_s3):
    no_s3.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHERSERVICE0001")
    no_s3.setenv("AWS_SECRET_ACCESS_KEY", "other-service-secret-9f")
    with pytest.raises(SentinelCubeError, match="no S3 endpoint.*CDSE_S3_ACCESS_KEY") as caught:
        open_cube(products, bands=["B04"], resolution=RESOLUTION)
    assert "other-service-secret-9f" not in str(caught.value)


def test_cdse_keys_read_eodata_while_aws_settings_serve_another_service(
    products, archive, cdse_env, no_s3
):
    """One environment: CDSE products read with CDSE's keys, AWS_* left for the store's
    service (here an endpoint that does not answer: using it for eodata would fail)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    no_s3.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHERSERVICE0001")
    no_s3.setenv("AWS_SECRET_ACCESS_KEY", "other-service-secret-9f")
    no_s3.setenv("AWS_ENDPOINT_URL", dead)
    remote = open_cube(products, bands=["B04"], resolution=RESOLUTION)
    local = open_cube(archive[0], bands=["B04"], resolution=RESOLUTION)
    _assert_same_cube(remote, local)


def test_no_path_and_no_s3path_still_says_download(products, no_s3):
    table = products.copy()
    table[S3PATH] = None
    with pytest.raises(SentinelCubeError, match="no local path: download them first"):
        open_cube(table, bands=["B04"], resolution=RESOLUTION)
    with pytest.raises(SentinelCubeError, match="no 'path' column"):
        open_cube(products.drop(columns=["path", S3PATH]), bands=["B04"])


def test_no_secret_in_the_table(products, archive, cdse_env):
    open_cube(products, bands=["B04"], resolution=RESOLUTION)
    for text in (repr(products), products.drop(columns="geometry").to_csv(), str(products)):
        assert SECRET not in text and KEY_ID not in text


def test_real_odata_s3path(real_data):
    answer = json.loads(
        (
            real_data / "cdse-odata" / "odata_products_s2_l1c_eodag_cop_dataspace_search.json"
        ).read_text()  # fmt: skip
    )
    table = parse_products(answer["value"])
    expected = {
        v["Name"].removesuffix(".SAFE"): "s3:/" + v["S3Path"] for v in answer["value"]
    }  # fmt: skip
    assert all(v["S3Path"].startswith("/eodata/") for v in answer["value"])
    assert table[S3PATH].to_dict() == expected
