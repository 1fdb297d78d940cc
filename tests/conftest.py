"""Shared fixtures: the real reference data folder and small generated archives."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "real-data"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared folder of real Sentinel-2 files; tests using it skip when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip("../shared/real-data is not beside this checkout")
    return REAL_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep catalogue caches out of the user's home during tests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


def _loopback(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like stay on the machine
        return True
    host = str(address[0])
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Every test runs offline: a connection to anything but the loopback fails loudly."""
    connect = socket.socket.connect
    connect_ex = socket.socket.connect_ex

    def guarded(method):
        def call(sock, address, *args, **kwargs):
            if not _loopback(address):
                raise AssertionError(f"a test tried to reach {address!r} off this machine")
            return method(sock, address, *args, **kwargs)

        return call

    monkeypatch.setattr(socket.socket, "connect", guarded(connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(connect_ex))
    resolve = socket.getaddrinfo
    own = {"localhost", socket.gethostname(), socket.getfqdn()}

    def local_names_only(host, *args, **kwargs):
        # a DNS query for another name would leave the machine before connect() is refused
        name = host.decode() if isinstance(host, bytes) else host
        if name and name not in own and not _is_ip(name):
            raise AssertionError(f"a test tried to resolve {name!r}, a name off this machine")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_names_only)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return True


#: Where off-machine HTTP from code the socket guard cannot see goes: GDAL's libcurl,
#: and any subprocess a test starts (they inherit the environment). A loopback port
#: nobody listens on, so such a request fails at once and nothing leaves the machine.
DEAD_PROXY = "http://127.0.0.1:9"


@pytest.fixture(autouse=True, scope="session")
def _no_route_off_the_machine():
    """Send every proxied HTTP(S) request but the loopback's to :data:`DEAD_PROXY`."""
    names = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY")
    saved = {name: os.environ.get(name) for name in names}
    for name in names[:4]:
        os.environ[name] = DEAD_PROXY
    for name in names[4:]:
        os.environ[name] = "127.0.0.1,localhost,::1"
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on the loopback for the session (see ``tests/_s3.py``)."""
    from _s3 import BUCKET, S3Server

    server = S3Server().start()
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The environment of a user of the loopback S3 server (keys, endpoint, region)."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_S3_ENDPOINT",
        "AWS_ENDPOINT_URL_S3",
        "AWS_HTTPS",
        "AWS_VIRTUAL_HOSTING",
        "CDSE_S3_ACCESS_KEY",
        "CDSE_S3_SECRET_KEY",
    ):
        monkeypatch.delenv(name, raising=False)  # fmt: skip
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture(scope="session")
def stac_published(tmp_path_factory):
    """A small archive published as Earth Search, Planetary Computer and CDSE publish
    Sentinel-2, served over HTTP on the loopback (see ``tests/_stac_fixtures.py``)."""
    from _stac_fixtures import make_stac_archive, publish
    from sentinel_cube.testing import FolderServer

    root = tmp_path_factory.mktemp("stac")
    safe = make_stac_archive(root / "safe")
    with FolderServer(root / "providers") as server:
        yield publish(safe, root / "providers", server.url)


@pytest.fixture(scope="session")
def odc_dn():
    """``tests/_odc.py``'s ``odc_dn`` run in one child process (skipped without odc-stac)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pytest.importorskip("odc.stac")
    from _odc import odc_dn as read

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield lambda *args: pool.submit(read, *args).result(timeout=120)
