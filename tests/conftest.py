"""Shared fixtures: no network for the whole suite, and a tiny random BERT preset."""

import os
import socket

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import pytest  # noqa: E402

import mtl_keras  # noqa: E402, F401


class NetworkBlocked(RuntimeError):
    pass


def _refuse(*args, **kwargs):
    raise NetworkBlocked(f"network access attempted during tests: {args[:2]!r}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any outbound connection or name lookup fails loudly (mtl_keras never downloads)."""
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a an quick brown fox jumps over lazy dog cafe sao paulo stocks fell "
    "market sport team won match film star new phone chip . , ! ? ##s ##ing ##ed"
).split()


def make_tiny_backbone(num_layers=2, hidden_dim=16, max_sequence_length=32):
    return keras_hub.models.BertBackbone(
        vocabulary_size=len(TINY_VOCAB),
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=hidden_dim,
        intermediate_dim=32,
        max_sequence_length=max_sequence_length,
    )


def make_tiny_tokenizer():
    return keras_hub.models.BertTokenizer(vocabulary=TINY_VOCAB, lowercase=True, strip_accents=True)


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory):
    """A keras-hub preset dir with a 2-layer, 16-wide random BERT and a 40-word vocab."""
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("tiny_bert")
    make_tiny_backbone().save_to_preset(str(path))
    make_tiny_tokenizer().save_to_preset(str(path))
    return path
