"""Export a multi-task model as a TF Serving SavedModel that takes raw sentences.

Tokenization (keras-hub's preprocessor: TF Text ops) is inside the graph, so clients
send strings. The standard TF Serving build links TF Text's op library.
"""

import os
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from mtl_keras.errors import InputError
from mtl_keras.model import EMBEDDING
from mtl_keras.preprocessing import make_preprocessor, trim_padding
from mtl_keras.tasks import TASKS

SIGNATURE = "serving_default"


def model_tasks(model):
    """The tasks whose heads a model from `build_model` has, in output order."""
    return [TASKS[name] for name in model.output_names if name in TASKS]


def serving_outputs(model, tokenizer, preprocessor, tasks):
    """The serving function: text [None] -> dict of named output tensors."""
    vocabulary = tf.constant(tokenizer.get_vocabulary())
    specials = tf.constant([tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id])

    def serve(text):
        x = trim_padding(preprocessor(text))
        x = {name: tf.cast(value, tf.int32) for name, value in x.items()}
        out = model(x, training=False)
        result = {EMBEDDING: tf.math.l2_normalize(out[EMBEDDING], axis=-1)}
        for task in tasks:
            logits = tf.cast(out[task.name], tf.float32)
            names = tf.constant(task.labels)
            predicted = tf.gather(names, tf.argmax(logits, axis=-1))
            if task.kind == "sentence":
                result[f"{task.name}_probs"] = tf.nn.softmax(logits)
                result[f"{task.name}_label"] = predicted
            else:
                ids = x["token_ids"]
                real = tf.reduce_all(ids[..., None] != specials, axis=-1)
                pieces = tf.gather(vocabulary, ids)
                result["word_pieces"] = tf.where(x["padding_mask"] > 0, pieces, "")
                result[f"{task.name}_tags"] = tf.where(real, predicted, "")
        return result

    return serve


def check_version_dir(output, overwrite):
    """TF Serving wants `<model>/<integer version>/`; refuse to clobber one silently."""
    output = Path(output)
    if not output.name.isdigit():
        raise InputError(
            f"'{output}' does not end in a version number: TF Serving loads "
            "<model_dir>/<version>/, e.g. serving/mtl/1."
        )
    if output.exists() and not overwrite:
        raise InputError(f"'{output}' exists; pass --overwrite to replace that version.")
    return output


def export_for_serving(model, tokenizer, output, max_length=128, overwrite=False):
    """Write the SavedModel to `output` (a version dir) and return its path.

    The version is written to a hidden temporary sibling and renamed into place, so TF
    Serving (which watches the model dir) never sees a half-written version.
    """
    output = check_version_dir(output, overwrite)
    tasks = model_tasks(model)
    preprocessor = make_preprocessor(tokenizer, max_length)
    preprocessor.build(None)  # an uncalled preprocessor has no packer yet
    archive = keras.export.ExportArchive()
    archive.track(preprocessor)
    archive.track(model)
    archive.add_endpoint(
        SIGNATURE,
        serving_outputs(model, tokenizer, preprocessor, tasks),
        input_signature=[tf.TensorSpec([None], tf.string, name="text")],
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}-"))
    try:
        archive.write_out(str(staging), verbose=False)
        if output.exists():
            shutil.rmtree(output)
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output
