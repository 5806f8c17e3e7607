"""No network for any Python process the tests start.

The test suite puts this folder on `PYTHONPATH` (tests/conftest.py), so every
interpreter it launches (`experiments.run`, `saved_model_cli`, fresh-process reloads)
imports this module at start-up and refuses outbound connections and name lookups with
`NetworkBlocked`, as the suite's own process does. mtl_keras never downloads; a code
path that tried would fail its test loudly instead of hanging on a hub.
"""

import socket


class NetworkBlocked(RuntimeError):
    pass


def refuse(*args, **kwargs):
    raise NetworkBlocked(f"network access attempted during tests: {args[:2]!r}")


# (owner, attribute) of every way out: connections and name lookups.
TARGETS = (
    (socket.socket, "connect"),
    (socket.socket, "connect_ex"),
    (socket, "create_connection"),
    (socket, "getaddrinfo"),
)


def block(setattr=setattr):
    """Replace every way out with `refuse` (pass monkeypatch.setattr to undo it later)."""
    for owner, name in TARGETS:
        setattr(owner, name, refuse)


if __name__ == "sitecustomize":  # started by Python in a test's subprocess, not imported
    block()
