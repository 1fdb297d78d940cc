"""Small pieces of the remote catalogues: credentials, paths, checksums, retries, tables."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _stac_server import STACServer
from sentinel_cube.catalog._checksum import decode_multihash, file_digest, strongest
from sentinel_cube.catalog._credentials import Credentials, resolve_credentials
from sentinel_cube.catalog._download import FileDownloader, RemoteFile
from sentinel_cube.catalog._errors import AuthenticationError, DownloadError, UnsafeNameError
from sentinel_cube.catalog._http import RetryPolicy, redact_url, retry_after_seconds
from sentinel_cube.catalog._paths import safe_join, safe_name, safe_relpath
from sentinel_cube.catalog._result import DownloadResult
from sentinel_cube.catalog._spec import open_catalog, read_products
from sentinel_cube.exceptions import CatalogError
from sentinel_cube.testing.servers._loopback import served_archive

SECRET = "pa55-w0rd-never-shown"


@pytest.fixture()
def no_env(monkeypatch, tmp_path):
    for name in ("CDSE_USERNAME", "CDSE_PASSWORD", "DHUS_USERNAME", "DHUS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc-absent"))
    return tmp_path


# --------------------------------------------------------------------------- credentials


def test_credentials_from_arguments_environment_and_netrc(no_env, monkeypatch):
    args = resolve_credentials("me", SECRET, env_prefix="CDSE", hosts=("h",), service="S")
    assert args.source == "arguments" and SECRET not in repr(args) and SECRET not in str(args)
    monkeypatch.setenv("CDSE_USERNAME", "env-user")
    monkeypatch.setenv("CDSE_PASSWORD", SECRET)
    env = resolve_credentials(None, None, env_prefix="CDSE", hosts=("h",), service="S")
    assert (env.username, env.password, env.source) == ("env-user", SECRET,
                                                        "environment (CDSE_USERNAME)")  # fmt: skip
    monkeypatch.delenv("CDSE_USERNAME")
    netrc = no_env / "netrc"
    netrc.write_text(f"machine identity.example.org login net-user password {SECRET}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    found = resolve_credentials(None, None, env_prefix="CDSE",
                                hosts=("other", "identity.example.org"), service="S")  # fmt: skip
    assert found.username == "net-user" and "machine identity.example.org" in found.source


def test_missing_or_half_credentials_say_what_to_do(no_env):
    with pytest.raises(AuthenticationError, match="CDSE_USERNAME and CDSE_PASSWORD"):
        resolve_credentials(None, None, env_prefix="CDSE", hosts=("h",), service="CDSE")
    assert resolve_credentials(None, None, env_prefix="X", hosts=(), service="X",
                               required=False) is None  # fmt: skip
    with pytest.raises(AuthenticationError, match="both username and password"):
        resolve_credentials("me", None, env_prefix="CDSE", hosts=(), service="CDSE")


def test_broken_netrc_error_does_not_quote_it(no_env, monkeypatch):
    netrc = no_env / "netrc"
    netrc.write_text(f"machine h login u password {SECRET} bogus-token {SECRET}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with pytest.raises(AuthenticationError) as caught:
        resolve_credentials(None, None, env_prefix="Q", hosts=("h",), service="Q")
    assert SECRET not in str(caught.value) and "cannot be parsed" in str(caught.value)


def test_repr_of_catalogues_hides_passwords(no_env):
    from sentinel_cube.catalog._cdse import CDSECatalog
    from sentinel_cube.catalog._dhus import DHuSCatalog

    for catalog in (CDSECatalog("me", SECRET), DHuSCatalog("https://hub.example/", "me", SECRET)):
        assert SECRET not in repr(catalog) and "me" in repr(catalog)
    assert repr(Credentials("me", SECRET)).count("<hidden>") == 1


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    "name", ["..", "../x", "a/../../b", "/etc/passwd", "C:\\x", "a\\..\\b", "x\x00y", "", "."]
)
def test_unsafe_names_are_refused(name, tmp_path):
    with pytest.raises(UnsafeNameError, match="outside the download folder"):
        safe_join(tmp_path, name)


@given(st.text(min_size=1, max_size=40))
def test_any_accepted_path_stays_inside_the_folder(text):
    root = Path("/srv/archive")
    try:
        relative = safe_relpath(text)
    except UnsafeNameError:
        return
    joined = os.path.normpath(os.path.join(root, relative))
    assert joined.startswith(str(root) + os.sep)


def test_symlink_escape_is_refused(tmp_path):
    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "link").symlink_to(tmp_path.parent)
    with pytest.raises(UnsafeNameError):
        safe_join(tmp_path / "inside", "link/x")
    assert safe_name("S2B:MSIL2A?.zip") == "S2B_MSIL2A_.zip"


# --------------------------------------------------------------------------- checksums, retries


def test_digests_and_choice_of_algorithm(tmp_path):
    import blake3

    path = tmp_path / "f"
    path.write_bytes(b"sentinel")
    assert file_digest(path, "md5") == hashlib.md5(b"sentinel").hexdigest()
    assert file_digest(path, "SHA3-256") == hashlib.sha3_256(b"sentinel").hexdigest()
    assert file_digest(path, "blake3") == blake3.blake3(b"sentinel").hexdigest()
    assert strongest({"MD5": "A", "BLAKE3": "B"}) == ("BLAKE3", "b")
    assert decode_multihash("1e20" + "0" * 64) == ("BLAKE3", "0" * 64)
    assert decode_multihash("1220abcd") is None


def test_retry_after_and_backoff():
    assert retry_after_seconds("120") == 120.0 and retry_after_seconds("-3") == 0.0
    assert retry_after_seconds(None) is None
    policy = RetryPolicy(backoff=0.5, max_backoff=3.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(1, retry_after=30) == 3.0  # a server's wish is capped too
    assert redact_url("https://u:p@h:8/a/b?sig=SECRET") == "https://h:8/a/b"


# --------------------------------------------------------------------------- downloader


@pytest.fixture(scope="module")
def stac(tmp_path_factory):
    zips = served_archive(tmp_path_factory.getbasetemp() / "catalog-archive")
    with STACServer(zips[:1]) as server:
        yield server


def test_permanent_errors_are_not_retried(stac, tmp_path):
    downloader = FileDownloader(policy=RetryPolicy(attempts=5, backoff=0.01))
    url = f"{stac.url}/data/nothing.SAFE/x.jp2"
    with pytest.raises(DownloadError, match="HTTP 404") as caught:
        downloader.fetch(RemoteFile(url, "x.jp2"), tmp_path)
    assert "/data/nothing.SAFE/x.jp2" in str(caught.value)
    assert len(stac.requests_to("/data/nothing")) == 1


def test_size_mismatch_without_checksum_is_caught(stac, tmp_path):
    product = next(iter(stac.products.values()))
    member = "manifest.safe"
    url = f"{stac.url}/data/{product.name}.SAFE/{member}"
    downloader = FileDownloader(policy=RetryPolicy(attempts=2, backoff=0.01))
    size = len(product.members[member])
    message = f"has {size} bytes, the catalogue announced {size + 5}"
    with pytest.raises(DownloadError, match=message):
        downloader.fetch(RemoteFile(url, member, size=size + 5), tmp_path)
    assert list(tmp_path.iterdir()) == []
    outcome = downloader.fetch(RemoteFile(url, member), tmp_path)
    assert outcome.path.read_bytes() == product.members[member] and not outcome.skipped
    assert downloader.fetch(RemoteFile(url, member), tmp_path).skipped


# --------------------------------------------------------------------------- tables, specs


def test_download_result_report():
    result = DownloadResult(downloaded={"a": Path("a.zip")}, pending={"b": "offline"},
                            failed={"c": "HTTP 404"})  # fmt: skip
    assert not result.ok and result.paths == [Path("a.zip")]
    assert "pending b: offline" in result.report() and "failed  c: HTTP 404" in str(result)
    with pytest.raises(CatalogError, match="c: HTTP 404"):
        result.raise_for_failures()


def test_open_catalog_and_products_files_round_trip(tmp_path, no_env):
    from sentinel_cube.catalog._cdse_query import parse_products
    from sentinel_cube.report import write_products
    from sentinel_cube.testing.servers._cdse import product_json
    from sentinel_cube.testing.servers._loopback import load_products

    with pytest.raises(CatalogError, match="unsupported catalogue"):
        open_catalog("ftp:x")
    assert type(open_catalog("cdse")).__name__ == "CDSECatalog"
    zips = served_archive(tmp_path / "a", tiles=("34TCT",), dates=("2023-07-06",))
    served = load_products(zips)
    table = parse_products([product_json(p, ["Attributes"]) for p in served.values()])
    for suffix in (".geojson", ".csv", ".parquet"):
        path = tmp_path / f"products{suffix}"
        write_products(table, str(path))
        back = read_products(path)
        assert list(back.index) == list(table.index) and back.loc[:, "catalog"].iloc[0] == "cdse"
        assert back["uuid"].iloc[0] == table["uuid"].iloc[0]
        assert back["beginposition"].iloc[0] == table["beginposition"].iloc[0]
    with pytest.raises(CatalogError, match="does not exist"):
        read_products(tmp_path / "missing.geojson")
