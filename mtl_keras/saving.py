"""Loading saved models safely, and keeping the tokenizer beside them."""

import json
import zipfile
from pathlib import Path

import keras
import keras_hub  # noqa: F401  (registers keras-hub classes for deserialization)

from mtl_keras.encoding import presets
from mtl_keras.errors import InputError, first_line

TOKENIZER_DIR = "tokenizer"


def check_model_file(path):
    """Refuse a path that is not an existing `.keras` archive, before anything loads."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file '{path}' does not exist: pass the model.keras a run wrote.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise InputError(f"model file '{path}' is not a .keras archive (truncated or corrupt?).")
    return path


def load_model(path, compile=True):
    """`keras.models.load_model` in safe mode, with one-line errors naming the file.

    Safe mode refuses to run arbitrary code (lambdas) stored in a `.keras` file, so a
    model file from someone else cannot execute code on load.
    """
    path = check_model_file(path)
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - any failure here means an unusable file
        raise InputError(
            f"model file '{path}' could not be loaded ({first_line(error)})."
        ) from error


def save_tokenizer(tokenizer, directory):
    """Write the tokenizer (config + vocabulary) into `directory`."""
    tokenizer.save_to_preset(str(directory))
    return Path(directory)


def load_tokenizer(directory):
    """A tokenizer from `save_tokenizer`'s directory, or from any local preset folder."""
    directory = Path(directory)
    config = directory / "tokenizer.json"
    if (directory / "config.json").is_file():
        return presets.load_tokenizer(directory)
    if not config.is_file():
        raise InputError(f"no tokenizer in '{directory}' (no tokenizer.json or config.json).")
    tokenizer = keras.saving.deserialize_keras_object(json.loads(config.read_text()))
    tokenizer.load_preset_assets(str(directory))
    return tokenizer


def copy_weights_from(model, path):
    """Copy weights from a saved model: its backbone into `model`'s backbone, and its other
    layers into the layers of `model` with the same name (the heads of shared tasks).

    The backbones are paired as backbones, whatever their names: Keras names a layer made
    without a name after how many of its class the process had made before
    (`bert_backbone_2`), and presets and models saved from it keep that name, so two
    copies of one encoder can differ in name; matching by name silently left the backbone
    out (seen when tests made backbones in another order).

    Returns the names of the layers copied (for example the backbone and a head, to
    start a new multi-task run from an earlier one).
    """
    saved = load_model(path, compile=False)
    source = {layer.name: layer for layer in saved.layers}
    ours, theirs = getattr(model, "backbone", None), getattr(saved, "backbone", None)
    copied = []
    for layer in model.layers:
        match = source.get(layer.name)
        if theirs is not None:
            if layer is ours:
                match = theirs
            elif match is theirs:
                continue  # the saved backbone goes to the backbone only
        if layer.weights and match is not None:
            shapes = [tuple(w.shape) for w in layer.weights]
            if shapes != [tuple(w.shape) for w in match.weights]:
                raise InputError(
                    f"layer {layer.name!r} in {path} has other shapes; cannot start from it."
                )
            layer.set_weights(match.get_weights())
            copied.append(layer.name)
    return copied
