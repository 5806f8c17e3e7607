import socket
import urllib.request

import pytest

from tests.conftest import NetworkBlocked


def test_outbound_connections_fail_loudly():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("example.org", 443)
    with pytest.raises((NetworkBlocked, OSError)):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)
