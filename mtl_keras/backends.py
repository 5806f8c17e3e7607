"""What differs between the Keras backends mtl_keras runs on: TensorFlow (default) and JAX.

The model, its layers, metrics and optimizer are written with `keras.ops` and run on
either; the input pipeline (tokenization, `tf.data`) and the TF Serving export are
TensorFlow on both (Keras feeds `tf.data` batches to JAX as numpy). What is left to
choose per backend is here: how a model runs outside `fit`, and how many batch shapes
the compiled functions see.
"""

import keras
import numpy as np

from mtl_keras.distributed import cluster as distributed

BACKENDS = ("tensorflow", "jax")


def backend():
    return keras.backend.backend()


def compiles_per_shape():
    """JAX compiles a function once per input shape; TensorFlow traces one relaxed graph."""
    return backend() == "jax"


def trains_statelessly():
    """JAX's `fit` is a compiled pure function: op by op without `jit_compile`, and the
    optimizer updates through `stateless_apply` (see `LayerwiseLR.train`)."""
    return backend() == "jax"


def build_before_first_step(model):
    """Have `fit` and `evaluate` build the loss and metric state from a batch before they
    trace a step, on TensorFlow as on JAX.

    Keras' TensorFlow trainer builds that state up front only for a model made under a
    `tf.distribute` strategy; otherwise the first trace of the train step creates the
    variables, and TensorFlow then traces the whole step (forward, backward and the
    optimizer's update) a second time. Naming the strategy in force (TensorFlow's default
    one, or the run's) is Keras' own switch for that (`_distribute_strategy`, read by its
    `_maybe_symbolic_build`); the steps and their results are the same. One trace fewer
    per `fit` (graph building, not arithmetic, so no fraction of the matmul peak applies),
    measured on a 2-vCPU Intel Xeon shared with a training run: a traced tiny run took
    11.5-15.6 s instead of 16.5-20.2 s, and one of the real encoder on 64 examples per task
    36-37 s instead of 43-45 s. Functions run eagerly trace nothing; there the build would
    only add its own half second.
    """
    if backend() != "tensorflow" or getattr(model, "_distribute_strategy", False) is not None:
        return
    import tensorflow as tf

    if not tf.config.functions_run_eagerly():
        model._distribute_strategy = tf.distribute.get_strategy()


# With a per-shape compiler, batch lengths are rounded up to a multiple of this, so a run
# compiles at most max_length / 16 shapes instead of one per longest-sentence length.
JAX_LENGTH_STEP = 16


def length_step():
    """The multiple a batch's sequence length is rounded up to (1: its longest text)."""
    return JAX_LENGTH_STEP if compiles_per_shape() else 1


def batch_length(lengths, width):
    """The length a batch of texts with these lengths is cut to (<= `width`, >= 1)."""
    step = length_step()
    longest = max(int(np.max(lengths)), 1)
    return min(-(-longest // step) * step, width)


def summed_gradient(gradient):
    """`gradient` with the rows of repeated ids summed: dense.

    On TensorFlow an embedding table's gradient is an `IndexedSlices` with one row per
    lookup, repeats included. Keras 3's optimizers treat it as if ids were unique: Adam's
    `ops.square` squares each row before the repeats are added, so its second moment is
    sum(g_i^2) instead of (sum g_i)^2, and a frequent token moved up to 2.7x the learning
    rate in one step. Adam densifies the gradient a line later anyway (`m - g`), so
    summing first costs nothing extra. JAX's gradients are dense already.
    """
    if backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):
            return tf.convert_to_tensor(gradient)
    return gradient


def numpy_callback(function, args, shape, dtype):
    """`function(*numpy arrays)` run from inside a compiled function: for sequential code
    (entity span decoding) that has no tensor form. TensorFlow: `tf.numpy_function`;
    JAX: `jax.pure_callback`. The result has the given static shape and dtype.
    """
    if backend() == "jax":
        import jax

        def call(*arrays):
            return np.asarray(function(*arrays), dtype).reshape(shape)

        return jax.pure_callback(call, jax.ShapeDtypeStruct(shape, dtype), *args)
    import tensorflow as tf

    out = tf.numpy_function(lambda *a: np.asarray(function(*a), dtype), list(args), dtype,
                            stateful=False)  # fmt: skip
    return keras.ops.reshape(out, shape)


def inference_function(model, input_names):
    """`model(x, training=False)` as one compiled function of a dict of int arrays -> numpy.

    It reads the model's variables at every call, so it sees training. TensorFlow: one
    `tf.function` with a relaxed [batch, length] signature (eager calls would be several
    times slower). JAX: `jax.jit` of `stateless_call`, compiled once per shape (callers
    cut batches to `batch_length`, so the shapes are few).
    """
    if backend() == "tensorflow":
        import tensorflow as tf

        spec = {f: tf.TensorSpec([None, None], model.input[f].dtype) for f in input_names}
        traced = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    elif backend() == "jax":
        import jax

        def stateless(trainable, non_trainable, x):
            return model.stateless_call(trainable, non_trainable, x, training=False)[0]

        jitted = jax.jit(stateless)

        def traced(x):
            cluster = distributed.current()
            if cluster is not None and cluster.num_processes > 1:
                x = distributed.replicated(x)  # every process runs the same batch
            return jitted(
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                x,
            )
    else:
        raise NotImplementedError(f"mtl_keras runs on {' or '.join(BACKENDS)}, not {backend()}.")

    def forward(x):
        x = {f: np.asarray(x[f], model.input[f].dtype) for f in input_names}
        return keras.tree.map_structure(keras.ops.convert_to_numpy, traced(x))

    return forward
