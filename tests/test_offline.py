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
