"""The suite runs offline: the guard in conftest refuses connections off the loopback."""

from __future__ import annotations

import socket

import pytest


def test_a_connection_off_this_machine_is_refused():
    with pytest.raises(AssertionError, match="off this machine"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1, never routed


def test_loopback_connections_still_work():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1):
            pass


def test_gdal_cannot_reach_off_the_machine():
    """GDAL's own HTTP (libcurl, below the socket guard) goes to the dead loopback proxy."""
    import time

    import rasterio
    from rasterio.errors import RasterioIOError

    url = "/vsicurl/https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/B04.tif"
    started = time.monotonic()
    with rasterio.Env(GDAL_HTTP_MAX_RETRY=0, CPL_VSIL_CURL_NON_CACHED="/vsicurl/"):
        with pytest.raises(RasterioIOError):
            rasterio.open(url)
    assert time.monotonic() - started < 10  # refused by the proxy port, not timed out
