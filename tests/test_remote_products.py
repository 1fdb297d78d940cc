"""Products on object storage (moto's S3 on the loopback) and HTTP, read in place.

Each remote product is compared with its local copy: the metadata (all fields but
paths) and the pixels of the same cube, bit for bit. Bad inputs (wrong keys, missing
bucket or product, an endpoint that does not answer) raise a clear error that names
the URL and never shows a secret; secrets never enter the dask graph.
"""

from __future__ import annotations

import dataclasses
import pickle
import socket
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from _s3 import BUCKET, KEY_ID, SECRET, FileServer
from sentinel_cube import LocalCatalog
from sentinel_cube._cloud import CDSE_ENDPOINT, settings
from sentinel_cube.cube import open_cube
from sentinel_cube.exceptions import CatalogError, ProductError, SentinelCubeError
from sentinel_cube.safe import Product, read_product
from sentinel_cube.testing import make_archive

SCALE = 61  # 180 px at 10 m
RESOLUTION = 10 * SCALE
WRONG_SECRET = "wrong-secret-Kx71Pq"


@dataclasses.dataclass(frozen=True)
class Archive:
    folders: list[Path]
    zips: list[Path]
    s3_folders: list[str]
    s3_zips: list[str]
    root: Path


@pytest.fixture(scope="module")
def archive(s3_server, tmp_path_factory) -> Archive:
    root = tmp_path_factory.mktemp("remote")
    folders = make_archive(root / "safe", dates=["2023-06-01"], scale=SCALE)
    zips = make_archive(root / "zips", dates=["2023-06-01"], scale=SCALE, zipped=True)
    return Archive(
        folders=folders,
        zips=zips,
        s3_folders=[s3_server.upload(p, "archive/safe") for p in folders],
        s3_zips=[s3_server.upload(p, "archive/zips") for p in zips],
        root=root,
    )


@pytest.fixture(scope="module")
def http(archive):
    with FileServer(archive.root) as server:
        yield server


def _without_paths(product: Product) -> Product:
    bands = {k: dataclasses.replace(b, path="") for k, b in product.bands.items()}
    return dataclasses.replace(product, path="", bands=bands)


# ------------------------------------------------------------------------ metadata


@pytest.mark.parametrize("kind", ["s3-folder", "s3-zip", "http-zip"])
def test_read_product_remote_equals_local(s3_env, archive, http, kind):
    local = archive.folders[0] if kind == "s3-folder" else archive.zips[0]
    url = {
        "s3-folder": archive.s3_folders[0],
        "s3-zip": archive.s3_zips[0],
        "http-zip": f"{http.url}/zips/{archive.zips[0].name}",
    }[kind]
    remote = read_product(url)
    assert _without_paths(remote) == _without_paths(read_product(local))
    assert remote.path == url
    prefix = {"s3-folder": "/vsis3/", "s3-zip": "/vsizip//vsis3/", "http-zip": "/vsizip//vsicurl/"}
    assert all(b.path.startswith(prefix[kind]) for b in remote.bands.values())


def test_remote_folder_is_read_with_two_gets_and_no_listing(s3_env, archive):
    start = len(s3_env.log)
    read_product(archive.s3_folders[1])
    requests = s3_env.log[start:]
    assert [r.method for r in requests] == ["GET", "GET"]  # product MTD, tile MTD
    assert all(r.range for r in requests)


def test_remote_zip_reads_only_its_directory_and_metadata(s3_env, archive):
    start = len(s3_env.log)
    read_product(archive.s3_zips[1])
    requests = s3_env.log[start:]
    sent = sum(r.sent for r in requests)
    assert len(requests) <= 6
    assert sent < archive.zips[1].stat().st_size / 4


def test_storage_options_override_the_environment(s3_server, archive, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    options = {"key": KEY_ID, "secret": SECRET, "endpoint_url": s3_server.endpoint_url}
    product = read_product(archive.s3_zips[0], storage_options=options)
    assert product.tile_id == read_product(archive.zips[0]).tile_id


# ------------------------------------------------------------------------ pixels


@pytest.mark.parametrize("kind", ["s3-folder", "s3-zip", "http-zip"])
def test_open_cube_remote_pixels_equal_local(s3_env, archive, http, kind):
    if kind == "s3-folder":
        remote, local = archive.s3_folders, archive.folders
    elif kind == "s3-zip":
        remote, local = archive.s3_zips, archive.zips
    else:
        remote = [f"{http.url}/zips/{p.name}" for p in archive.zips]
        local = archive.zips
    kwargs = {"bands": ["B04", "B05", "SCL"], "resolution": RESOLUTION, "units": "dn"}
    got = open_cube(remote, **kwargs).compute()
    expected = open_cube(local, **kwargs).compute()
    assert got.dtype == expected.dtype
    assert np.array_equal(got.values, expected.values)
    assert (got.values > 0).any()


def test_secrets_stay_out_of_the_graph(s3_server, archive, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    options = {"key": KEY_ID, "secret": SECRET, "endpoint_url": s3_server.endpoint_url}
    cube = open_cube(archive.s3_zips, bands=["B04"], resolution=RESOLUTION,
                     storage_options=options)  # fmt: skip
    graph = pickle.dumps(dict(cube.data.__dask_graph__()))
    assert SECRET.encode() not in graph and KEY_ID.encode() not in graph
    assert b"AWS_S3_ENDPOINT" in graph  # the endpoint travels, the keys do not
    # tasks of this process use the keys given on the client
    expected = open_cube(archive.zips, bands=["B04"], resolution=RESOLUTION).compute()
    assert np.array_equal(cube.compute().values, expected.values, equal_nan=True)
    assert SECRET not in repr(settings(options)) and SECRET not in repr(cube)


def test_one_chunk_requests_and_bytes(s3_env, tmp_path, capsys):
    """Requests and bytes of reading one chunk of one band (figures printed for the report).

    A product of 1098 x 1098 px at 10 m, its JP2 tiled 256 x 256 (5 x 5 tiles), read
    afresh (a new key: nothing in GDAL's cache); one tile-aligned 256 x 256 chunk in the
    middle of the band (its header and one tile to fetch).
    """
    (folder,) = make_archive(tmp_path, dates=["2023-06-01"], tiles=["34TCT"], scale=10,
                             bands=["B04"], block_size=256)  # fmt: skip
    url = s3_env.upload(folder, f"measure-{time.monotonic_ns()}")
    product = read_product(url, require_bands=None)
    band = product.band("B04")
    cube = open_cube([product], bands=["B04"], resolution=100, chunks=256, units="dn")
    start = len(s3_env.log)
    got = cube.isel(time=0, x=slice(512, 768), y=slice(512, 768)).compute()
    key = band.path[len("/vsis3") :]
    requests = [r for r in s3_env.log[start:] if r.path == key]
    others = [r for r in s3_env.log[start:] if r.path != key]
    sent = sum(r.sent for r in requests)
    size = (folder / band.path.split(".SAFE/", 1)[1]).stat().st_size
    tiles = -(-band.shape[0] // 256) * -(-band.shape[1] // 256)
    with capsys.disabled():
        print(
            f"\none 256 x 256 chunk of B04 ({band.shape[1]} x {band.shape[0]} px, {tiles} JP2 "
            f"tiles, {size} bytes, ~{size // tiles} bytes per tile): {len(requests)} "
            f"requests ({', '.join(f'{r.method} {r.range}' for r in requests)}), "
            f"{sent} bytes received, {sent / (size / tiles):.1f} x one tile's bytes, "
            f"{sent / size:.2f} x the file; other requests: {len(others)}"
        )
    assert (got.values > 0).any()
    assert not others
    assert len(requests) <= 4
    assert sent < size


# ------------------------------------------------------------------------ catalogue


def test_catalog_lists_an_s3_prefix_like_the_local_folder(s3_env, archive, tmp_path):
    remote = LocalCatalog(f"s3://{BUCKET}/archive/safe", cache_dir=tmp_path)
    local = LocalCatalog(archive.root / "safe", cache_dir=tmp_path)
    got, expected = remote.search(), local.search()
    assert list(got.index) == list(expected.index)
    assert list(got["size"]) == list(expected["size"])
    assert list(got["path"]) == archive.s3_folders
    assert repr(remote) == f"LocalCatalog('s3://{BUCKET}/archive/safe')"
    # a rescan of an unchanged prefix lists, and reads no metadata again
    start = len(s3_env.log)
    again = LocalCatalog(f"s3://{BUCKET}/archive/safe", cache_dir=tmp_path).search()
    assert list(again.index) == list(got.index)
    assert all(r.method != "GET" or "list-type" in r.path or r.range is None
               for r in s3_env.log[start:])  # fmt: skip
    # zips too, and the cube of the listed products
    zips = LocalCatalog(f"s3://{BUCKET}/archive/zips", cache_dir=tmp_path).search()
    assert list(zips.index) == list(expected.index)
    cube = open_cube(zips, bands=["B04"], resolution=RESOLUTION, units="dn").compute()
    assert np.array_equal(cube.values, open_cube(expected, bands=["B04"],
                          resolution=RESOLUTION, units="dn").compute().values)  # fmt: skip


# ------------------------------------------------------------------------ bad input


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_wrong_keys(s3_env, archive):
    options = {"key": "AKIAWRONGWRONGWRONG0", "secret": WRONG_SECRET}
    for url in (archive.s3_zips[0], archive.s3_folders[0]):
        with pytest.raises(ProductError) as caught:
            read_product(url, storage_options=options)
        message = str(caught.value)
        assert url in message and "credentials" in message
        assert WRONG_SECRET not in message and SECRET not in message
    with pytest.raises(CatalogError) as listing:
        LocalCatalog(f"s3://{BUCKET}/archive", storage_options=options).search()
    assert "credentials" in str(listing.value) and WRONG_SECRET not in str(listing.value)


def test_missing_bucket_and_missing_product(s3_env, archive):
    for url in (
        "s3://no-such-bucket/archive/S2B_MSIL2A_20230601T094549_N0509_R079_T34TCT_20230601T124346.zip",
        f"s3://{BUCKET}/archive/S2B_MSIL2A_20230601T094549_N0509_R079_T34TXX_20230601T124346.SAFE",
        f"s3://{BUCKET}/archive/nothing.zip",
    ):
        with pytest.raises(ProductError) as caught:
            read_product(url)
        message = str(caught.value)
        assert url in message and "check the URL" in message, message
        assert SECRET not in message


def test_missing_http_product(http):
    url = f"{http.url}/zips/absent.zip"
    with pytest.raises(SentinelCubeError, match="does not exist.*check the URL"):
        read_product(url)


def test_endpoint_that_does_not_answer(s3_env, archive, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(ProductError) as caught:
        read_product(archive.s3_zips[0])
    message = str(caught.value)
    assert archive.s3_zips[0] in message and "answers" in message and SECRET not in message
    assert time.monotonic() - started < 30


def test_a_band_file_missing_from_a_remote_folder_fails_when_read(s3_env, archive):
    """A remote folder is not listed: the missing band shows up when its pixels are read."""
    url = s3_env.upload(archive.folders[0], f"gap-{time.monotonic_ns()}")
    product = read_product(url)
    band = product.band("B04").path
    s3_env.client().delete_object(Bucket=BUCKET, Key=band[len(f"/vsis3/{BUCKET}/") :])
    cube = open_cube([product], bands=["B04"], resolution=RESOLUTION)
    with pytest.raises(ProductError) as caught:
        cube.compute()
    message = str(caught.value)
    assert "s3://" + band[len("/vsis3/") :] in message and "does not exist" in message
    assert SECRET not in message and "/vsis3/" not in message


def test_secrets_in_urls_are_never_shown(http):
    url = f"http://user:hunter2@{http.url.split('://')[1]}/zips/absent.zip?X-Amz-Signature=s3cr3t"
    with pytest.raises(SentinelCubeError) as caught:
        read_product(url)
    assert "hunter2" not in str(caught.value) and "s3cr3t" not in str(caught.value)


def test_a_remote_object_that_is_not_a_zip(s3_env, archive, tmp_path):
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip" * 100)
    url = s3_env.upload(fake, "broken")
    with pytest.raises(ProductError, match="download the product again"):
        read_product(url)
    assert zipfile.is_zipfile(archive.zips[0])


# ------------------------------------------------------------------------ settings


def test_settings_from_the_environment():
    aws = settings(environ={"AWS_ENDPOINT_URL_S3": "https://minio.example:9000",
                            "AWS_ENDPOINT_URL": "http://other:1"})  # fmt: skip
    env = aws.gdal_env()
    assert (env["AWS_S3_ENDPOINT"], env["AWS_HTTPS"], env["AWS_VIRTUAL_HOSTING"]) == (
        "minio.example:9000", "YES", "FALSE",
    )  # fmt: skip
    gdal = settings(environ={"AWS_S3_ENDPOINT": "s3.example", "AWS_HTTPS": "NO",
                             "AWS_VIRTUAL_HOSTING": "FALSE"}).gdal_env()  # fmt: skip
    assert (gdal["AWS_S3_ENDPOINT"], gdal["AWS_HTTPS"], gdal["AWS_VIRTUAL_HOSTING"]) == (
        "s3.example", "NO", "FALSE",
    )  # fmt: skip
    assert "AWS_S3_ENDPOINT" not in settings(environ={}).gdal_env()
    cdse = settings(environ={"CDSE_S3_ACCESS_KEY": "ck", "CDSE_S3_SECRET_KEY": "cs"})
    assert cdse.endpoint == CDSE_ENDPOINT and cdse.https and cdse.virtual_hosting is False
    assert cdse.gdal_credentials() == {"AWS_ACCESS_KEY_ID": "ck", "AWS_SECRET_ACCESS_KEY": "cs"}
    assert "cs" not in repr(cdse) and "cs" not in str(cdse.gdal_env())
    own = settings(environ={"CDSE_S3_ACCESS_KEY": "ck", "CDSE_S3_SECRET_KEY": "cs",
                            "CDSE_S3_ENDPOINT": "http://127.0.0.1:9"})  # fmt: skip
    assert (own.endpoint, own.https) == ("127.0.0.1:9", False)
    both = settings(
        {"key": "k2", "secret": "s2", "endpoint_url": "http://h:1"},
        environ={"AWS_ACCESS_KEY_ID": "k1", "AWS_SECRET_ACCESS_KEY": "s1"},
    )
    assert both.storage_options()["key"] == "k2" and both.endpoint == "h:1"
    with pytest.raises(SentinelCubeError, match="unknown entries"):
        settings({"password": "x"})
