"""Export a multi-task model as a TF Serving SavedModel that takes raw sentences.

Tokenization (keras-hub's preprocessor: TF Text ops) is inside the graph, so clients
send strings. The standard TF Serving build links TF Text's op library.
"""

import warnings
from pathlib import Path

import keras
import tensorflow as tf

from mtl_keras.artifacts import atomic_write, check_replaceable, ensure_writable_dir, write_card
from mtl_keras.encoding.preprocessing import check_max_length, make_preprocessor, trim_padding
from mtl_keras.errors import InputError
from mtl_keras.model.multitask import EMBEDDING, MultiTaskModel

SIGNATURE = "serving_default"


def serving_outputs(model, tokenizer, preprocessor, tasks):
    """The serving function: text [None] -> dict of named output tensors.

    Args:
        model: BERT inputs -> {"embedding", <task>: logits} (`inference_model()`).
    """
    vocabulary = tf.constant(tokenizer.get_vocabulary())
    specials = tf.constant([tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id])

    def serve(text):
        x = trim_padding(preprocessor(text))
        x = {name: tf.cast(value, tf.int32) for name, value in x.items()}
        out = model(x, training=False)
        result = {EMBEDDING: tf.math.l2_normalize(out[EMBEDDING], axis=-1)}
        for task in tasks:
            logits = tf.cast(out[task.name], tf.float32)
            result.update(task.spec.serve(task, logits, x, vocabulary, specials))
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
    return check_replaceable(output, overwrite)


def export_for_serving(model, tokenizer, output, *, max_length=None, overwrite=False,
                       quantize=None, card=None):  # fmt: skip
    """Write the SavedModel to `output` (a version dir) and return its path.

    Texts are cut at `max_length` word pieces (default: the length the model trained at).

    The version is written to a hidden temporary sibling and renamed into place, so TF
    Serving (which watches the model dir) never sees a half-written version. With
    `quantize` (a name in `QUANTIZATIONS`), a copy of the model gets int8 weights (Keras
    `quantize`) first: about a quarter of the size; speed by mode and CPU in BENCHMARKS.md.
    `card`: the model card's text, written as README.md in the version (`model_card`).
    """
    if not isinstance(model, MultiTaskModel):
        raise InputError(f"can only export a MultiTaskModel, got {type(model).__name__}.")
    output = check_version_dir(output, overwrite)
    max_length = model.serving_length(max_length)
    check_max_length(max_length, model.backbone)
    ensure_writable_dir(output.parent, "--output")
    if quantize is not None:
        model = quantized_copy(model, quantize)
    preprocessor = make_preprocessor(tokenizer, max_length)
    preprocessor.build(None)  # an uncalled preprocessor has no packer yet
    inference = model.inference_model()
    archive = keras.export.ExportArchive()
    archive.track(preprocessor)
    archive.track(inference)
    archive.add_endpoint(
        SIGNATURE,
        serving_outputs(inference, tokenizer, preprocessor, model.text_tasks),
        input_signature=[tf.TensorSpec([None], tf.string, name="text")],
    )

    def write(folder):
        archive.write_out(folder, verbose=False)
        write_card(folder, card)

    return atomic_write(output, write, directory=True)


def _int8_weights_only():
    # No activation quantizer: Keras keeps the inputs in float and casts the int8 kernel
    # up inside the product, so the float32 matmul kernels run (TensorFlow's int8 x int8
    # products on CPU are several times slower than its float32 ones).
    return keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)


# name: (Keras quantization config factory, what it does). Both store int8 weights.
QUANTIZATIONS = {
    "int8": (
        lambda: keras.quantizers.Int8QuantizationConfig(),
        "Keras' default, int8 inputs to every product too (speed by CPU: docs/exports.md)",
    ),
    "int8-weights": (
        _int8_weights_only,
        "float32 products, float32's kernels (speed by CPU: docs/exports.md)",
    ),
}


def quantized_copy(model, mode):
    """A copy of `model` with int8 weights by `mode` (a name in `QUANTIZATIONS`); the model
    itself is left as it was.

    LoRA adapters are merged first (Keras cannot quantize a layer with LoRA enabled).
    """
    if mode not in QUANTIZATIONS:
        raise InputError(
            f"unknown quantization {mode!r}; choose one of {', '.join(QUANTIZATIONS)}."
        )
    from mtl_keras.export.portable import plain_backbone

    copy = MultiTaskModel(plain_backbone(model.backbone), model.tasks, model.dropout,
                          model.pooling_mode, max_length=model.max_length)  # fmt: skip
    for name in model.head_denses:
        for mine, theirs in zip(copy.head_layers(name), model.head_layers(name), strict=True):
            mine.set_weights(theirs.get_weights())
    copy.pooling.set_weights(model.pooling.get_weights())  # attention pooling has weights
    with warnings.catch_warnings():  # Keras warns once per layer kind it leaves as is
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")
        copy.quantize(config=QUANTIZATIONS[mode][0]())
    return copy
