"""Downloads survive every fault of the issue, with nothing lost or corrupted.

Each test runs the loopback CDSE server (catalogue, identity service, download
service) over a small synthetic archive, switches on one fault, downloads and
checks the bytes on disk against the served product, plus what the server saw.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentinel_cube.catalog._cdse import CDSECatalog
from sentinel_cube.catalog._errors import ChecksumMismatchError
from sentinel_cube.catalog._http import RetryPolicy
from sentinel_cube.safe import read_product
from sentinel_cube.testing.servers._cdse import CDSEServer
from sentinel_cube.testing.servers._loopback import Faults, served_archive

FAST = RetryPolicy(attempts=5, backoff=0.01, max_backoff=5.0, max_time=60.0, timeout=10.0)
USER, PASSWORD = "user@example.org", "secret"


@pytest.fixture(scope="session")
def zips(tmp_path_factory) -> list[Path]:
    return served_archive(tmp_path_factory.getbasetemp() / "catalog-archive")


def _catalog(server: CDSEServer, **kwargs) -> CDSECatalog:
    return CDSECatalog(USER, PASSWORD, retry=FAST, **server.catalog_kwargs, **kwargs)


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part") or ".partial" in p.name]


def _assert_exact(server: CDSEServer, result, folder: Path) -> None:
    """Every downloaded zip is byte-identical to the served one; no temporary files remain."""
    assert not result.failed and not result.pending, result.report()
    for pid, path in result.downloaded.items():
        served = server.products[pid].data
        assert hashlib.md5(path.read_bytes()).hexdigest() == hashlib.md5(served).hexdigest()
    assert _leftovers(folder) == []


def test_connection_dropped_mid_file_resumes_with_range(zips, tmp_path):
    faults = Faults(drop_after=100_000, drop_times=1)
    with CDSEServer(zips[:1], faults=faults) as server:
        cat = _catalog(server)
        products = cat.search()
        result = cat.download(products, tmp_path, progress=False)
        _assert_exact(server, result, tmp_path)
        gets = server.requests_to("/$value", "GET")
    assert [r.range for r in gets] == [None, "bytes=100000-"]  # resumed, not restarted


def test_interrupted_process_resumes_from_the_part_file(zips, tmp_path):
    """A .part left by a killed run is continued from its last byte."""
    with CDSEServer(zips[:1]) as server:
        cat = _catalog(server)
        products = cat.search()
        pid = products.index[0]
        part = tmp_path / f"{pid}.zip.part"
        part.write_bytes(server.products[pid].data[:70_000])
        result = cat.download(products, tmp_path, progress=False)
        _assert_exact(server, result, tmp_path)
        assert [r.range for r in server.requests_to("/$value", "GET")] == ["bytes=70000-"]


def test_server_ignoring_range_gets_a_clean_restart(zips, tmp_path):
    faults = Faults(drop_after=50_000, drop_times=1, ignore_range=True)
    with CDSEServer(zips[:1], faults=faults) as server:
        cat = _catalog(server)
        result = cat.download(cat.search(), tmp_path, progress=False)
        _assert_exact(server, result, tmp_path)  # no bytes appended twice
        gets = server.requests_to("/$value", "GET")
    assert [r.range for r in gets] == [None, "bytes=50000-"]  # asked to resume, got 200


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_then_success(zips, tmp_path, status):
    faults = Faults(fail_times=2, fail_status=status)
    with CDSEServer(zips[:1], faults=faults) as server:
        cat = _catalog(server)
        result = cat.download(cat.search(), tmp_path, progress=False)
        _assert_exact(server, result, tmp_path)
        assert len(server.requests_to("/$value", "GET")) == 3


def test_429_with_retry_after_is_honoured(zips, tmp_path):
    faults = Faults(fail_times=1, fail_status=429, retry_after=1)
    with CDSEServer(zips[:1], faults=faults) as server:
        cat = _catalog(server)
        result = cat.download(cat.search(), tmp_path, progress=False)
        _assert_exact(server, result, tmp_path)
        first, second = server.requests_to("/$value", "GET")
    assert second.time - first.time >= 0.95  # waited Retry-After, not the 0.01 s backoff


def test_retries_are_bounded(zips, tmp_path):
    faults = Faults(fail_times=100, fail_status=503)
    with CDSEServer(zips[:1], faults=faults) as server:
        cat = CDSECatalog(USER, PASSWORD, retry=RetryPolicy(attempts=3, backoff=0.01),
                          **server.catalog_kwargs)  # fmt: skip
        result = cat.download(cat.search(), tmp_path, progress=False)
        assert len(server.requests_to("/$value", "GET")) == 3
    (reason,) = result.failed.values()
    assert "gave up after 3 attempt(s)" in reason and "HTTP 503" in reason


def test_checksum_mismatch_redownloads_once(zips, tmp_path):
    faults = Faults(corrupt_times=1)
    with CDSEServer(zips[:1], faults=faults) as server:
        cat = _catalog(server)
        result = cat.download(cat.search(), tmp_path, progress=False)
        _assert_exact(server, result, tmp_path)
        assert len(server.requests_to("/$value", "GET")) == 2


def test_checksum_mismatch_twice_fails_with_both_checksums(zips, tmp_path):
    faults = Faults(corrupt_times=2)
    with CDSEServer(zips[:1], faults=faults) as server:
        cat = _catalog(server)
        products = cat.search()
        result = cat.download(products, tmp_path, progress=False)
        pid = products.index[0]
        expected = server.products[pid].blake3
        reason = result.failed[pid]
        assert "BLAKE3" in reason and expected in reason
        assert reason.count("should be") == 1 and "the two downloads gave" in reason
        assert list(tmp_path.iterdir()) == []  # neither the bad copy nor a .part is kept
        with pytest.raises(ChecksumMismatchError) as caught:
            raise_first(cat, server, pid, tmp_path)
    assert len(set(caught.value.actual)) == 2 and caught.value.expected == expected
    assert all(actual in str(caught.value) for actual in caught.value.actual)


def raise_first(cat: CDSECatalog, server: CDSEServer, pid: str, folder: Path) -> None:
    """Call the downloader directly so the typed error is visible."""
    from sentinel_cube.catalog._download import RemoteFile

    server.faults.corrupt_times = 2
    product = server.products[pid]
    remote = RemoteFile(f"{cat.download_url}/Products({product.uuid})/$value", f"{pid}.zip",
                        len(product.data), {"BLAKE3": product.blake3})  # fmt: skip
    cat._downloader.fetch(remote, folder)


def test_expired_access_token_mid_batch_is_refreshed(zips, tmp_path):
    with CDSEServer(zips) as server:
        cat = _catalog(server, max_connections=1)
        products = cat.search()
        server.expire_access_after = 2  # the third file request finds the token expired
        result = cat.download(products, tmp_path, progress=False)
        _assert_exact(server, result, tmp_path)
        assert len(result.downloaded) == 4
        assert server.grants == ["password", "refresh_token"]  # refreshed, not re-logged in


def test_expired_refresh_token_logs_in_again(zips, tmp_path):
    with CDSEServer(zips[:2]) as server:
        cat = _catalog(server)
        products = cat.search()
        first = cat.download(products.iloc[:1], tmp_path, progress=False)
        server.expire_access_tokens()
        server.expire_refresh_tokens()
        second = cat.download(products.iloc[1:], tmp_path, progress=False)
        assert first.ok and second.ok
        assert server.grants == ["password", "refresh_token", "password"]


def test_access_token_is_refreshed_before_it_expires(zips):
    """With a clock past the token's lifetime the manager refreshes without any 401."""
    from sentinel_cube.catalog._cdse_auth import TokenManager
    from sentinel_cube.catalog._credentials import Credentials
    from sentinel_cube.catalog._http import api_session

    now = [1000.0]
    with CDSEServer(zips[:1], access_lifetime=600) as server:
        manager = TokenManager(api_session(FAST), server.catalog_kwargs["token_url"],
                               Credentials(USER, PASSWORD), clock=lambda: now[0])  # fmt: skip
        token = manager.access_token()
        now[0] += 500
        assert manager.access_token() == token  # still well within its lifetime
        now[0] += 80  # 580 s: inside the safety margin before expiry at 600 s
        assert manager.access_token() != token
        assert server.grants == ["password", "refresh_token"]


def test_offline_product_comes_online_after_polls(zips, tmp_path):
    with CDSEServer(zips[:2]) as server:
        cat = _catalog(server)
        products = cat.search()
        offline = products.index[0]
        server.set_offline(offline, polls=3)
        products = cat.search()  # the catalogue now says Online: false
        assert not products.loc[offline, "online"]
        result = cat.download(products, tmp_path, wait=True, poll_interval=0.02, timeout=10,
                              progress=False)  # fmt: skip
        _assert_exact(server, result, tmp_path)
        uuid = server.products[offline].uuid
        assert server.orders == [uuid]
        assert len(server.requests_to(f"/odata/v1/Products({uuid})", "GET")) >= 4


def test_offline_product_is_pending_without_wait(zips, tmp_path):
    with CDSEServer(zips[:2]) as server:
        offline = read_product(zips[0], require_bands=None).product_id
        server.set_offline(offline, polls=1000)
        cat = _catalog(server)
        products = cat.search()
        result = cat.download(products, tmp_path, progress=False)
        assert list(result.pending) == [offline] and "retrieval ordered" in result.pending[offline]
        assert len(result.downloaded) == 1
        waited = cat.download(products, tmp_path, wait=True, timeout=0.1, poll_interval=0.02,
                              progress=False)  # fmt: skip
        assert "still offline after waiting 0.1 s" in waited.pending[offline]
        assert server.orders == [server.products[offline].uuid] * 2


def test_product_name_with_dotdot_is_refused(zips, tmp_path):
    with CDSEServer(zips[:1]) as server:
        name = read_product(zips[0], require_bands=None).product_id
        hostile = f"../../escaped_{name}"
        server.rename(name, hostile)
        cat = _catalog(server)
        products = cat.search()
        assert list(products.index) == [hostile]
        folder = tmp_path / "archive"
        whole = cat.download(products, folder, progress=False)
        bands = cat.download(products, folder, bands=["B04"], progress=False)
        assert server.requests_to("/download/") == []  # refused before any transfer
    for result in (whole, bands):
        assert "outside the download folder" in result.failed[hostile]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_killed_process_resumes_where_it_stopped(zips, tmp_path):
    """kill -9 in the middle of a file, then the same download finishes it with a Range."""
    folder = tmp_path / "archive"
    with CDSEServer(zips[:1], faults=Faults(slow=30.0)) as server:
        pid = next(iter(server.products))
        script = (
            "import sys\n"
            "from sentinel_cube.catalog._cdse import CDSECatalog\n"
            f"cat = CDSECatalog({USER!r}, {PASSWORD!r}, catalogue_url={server.url!r} + "
            f"'/odata/v1', download_url={server.url!r} + '/download/odata/v1', "
            f"token_url={server.catalog_kwargs['token_url']!r})\n"
            f"cat.download(cat.search(), {str(folder)!r}, progress=False)\n"
        )
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        child = subprocess.Popen([sys.executable, "-c", script], env=env)
        part = folder / f"{pid}.zip.part"
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                if part.is_file() and part.stat().st_size >= len(server.products[pid].data) // 2:
                    break
                time.sleep(0.05)
        finally:
            child.kill()
            child.wait()
        kept = part.stat().st_size
        assert 0 < kept < len(server.products[pid].data)
        assert not (folder / f"{pid}.zip").exists()  # nothing unverified under the final name
        server.faults.slow = 0.0
        cat = CDSECatalog(USER, PASSWORD, retry=FAST, **server.catalog_kwargs)
        result = cat.download(cat.search(), folder, progress=False)
        _assert_exact(server, result, folder)
        assert server.requests_to("/$value", "GET")[-1].range == f"bytes={kept}-"
