"""The suite's network guard: its own exception, in this process and in the ones it starts."""

import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import NetworkBlocked


def test_outbound_connections_fail_loudly():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("example.org", 443)
    with pytest.raises(NetworkBlocked):  # urllib wraps OSError only: the guard's error passes
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)
    with pytest.raises(NetworkBlocked):
        socket.socket().connect_ex(("127.0.0.1", 9))


def test_processes_started_by_tests_are_guarded_too():
    code = (
        "import socket, urllib.request\n"
        "for attempt in (lambda: socket.create_connection(('127.0.0.1', 9)),\n"
        "                lambda: socket.getaddrinfo('example.org', 443),\n"
        "                lambda: urllib.request.urlopen('http://127.0.0.1:9/', timeout=1)):\n"
        "    try:\n"
        "        attempt()\n"
        "    except Exception as error:\n"
        "        print(type(error).__module__, type(error).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["sitecustomize NetworkBlocked"] * 3
