"""Data-parallel training across processes and machines: JAX with `keras.distribution`.

Keras 3's `fit` does not run under TensorFlow's multi-worker strategy; its own route
past one machine is `keras.distribution` on the JAX backend. Every process builds the
same model (same seed, same data order), joins the cluster named by Keras' variables
(so any launcher that sets them works: `experiments.launch`, Slurm, a Kubernetes Job),
and feeds its own rows of every global batch; gradients are averaged across processes
inside the compiled step, so the weights stay identical everywhere.
"""

import dataclasses
import os
import sys
import threading

import keras
import numpy as np
import tensorflow as tf

from mtl_keras.errors import InputError

ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"  # host:port of process 0 first, comma-separated
PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
# A cluster that has not formed by then is an error; JAX's own default waits 300 s.
DEFAULT_TIMEOUT = 120


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Where this process stands: its id, how many processes, process 0's address."""

    process_id: int = 0
    num_processes: int = 1
    coordinator: str | None = None

    @property
    def is_chief(self):
        """Process 0 writes the run's files; the others train and evaluate alike."""
        return self.process_id == 0

    def env(self):
        """The variables that put a process at this place in the cluster."""
        return {ADDRESSES: self.coordinator or "", PROCESSES: str(self.num_processes),
                PROCESS_ID: str(self.process_id)}  # fmt: skip


def cluster_from_env(environ=None):
    """The `Cluster` Keras' variables describe; one-line errors for missing or bad ones."""
    environ = os.environ if environ is None else environ
    missing = [name for name in (ADDRESSES, PROCESSES, PROCESS_ID) if not environ.get(name)]
    if missing:
        raise InputError(
            f"--distribution data_parallel needs {', '.join(missing)} set: start the processes "
            "with `python -m experiments.launch --processes N -- ...`, or set "
            f"{ADDRESSES}, {PROCESSES} and {PROCESS_ID} on every host (README, "
            '"More than one machine").'
        )
    try:
        count, index = int(environ[PROCESSES]), int(environ[PROCESS_ID])
    except ValueError:
        raise InputError(
            f"{PROCESSES} and {PROCESS_ID} must be whole numbers, got "
            f"{environ[PROCESSES]!r} and {environ[PROCESS_ID]!r}."
        ) from None
    if count < 1 or not 0 <= index < count:
        raise InputError(f"{PROCESS_ID}={index} must be in 0..{count - 1} ({PROCESSES}={count}).")
    addresses = [a.strip() for a in environ[ADDRESSES].split(",") if a.strip()]
    if len(addresses) not in (1, count):
        raise InputError(
            f"{ADDRESSES} lists {len(addresses)} addresses for {count} processes: give "
            "process 0's host:port alone, or one per process."
        )
    host, _, port = addresses[0].rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"{ADDRESSES} must start with process 0's host:port: {addresses[0]!r}.")
    return Cluster(index, count, addresses[0])


def start(timeout=DEFAULT_TIMEOUT, environ=None):
    """Join the cluster and train data-parallel from here on: returns the `Cluster`.

    Call it before building the model: variables made afterwards are replicated on every
    process's devices. A cluster that does not form within `timeout` seconds (a wrong
    address, a process that never started) ends this process with one line on stderr.
    """
    if keras.backend.backend() != "jax":
        raise InputError(
            "--distribution data_parallel runs on the JAX backend: set KERAS_BACKEND=jax "
            f"(this process runs {keras.backend.backend()})."
        )
    import jax

    cluster = cluster_from_env(environ)
    if cluster.num_processes > 1 and not jax.distributed.is_initialized():
        # `keras.distribution.initialize` reads the same variables but waits JAX's 300 s and
        # then aborts with a C++ stack trace; this waits `timeout` and says what to check.
        watchdog = threading.Timer(timeout, cluster_did_not_form, (cluster, timeout))
        watchdog.daemon = True
        watchdog.start()
        try:
            jax.distributed.initialize(
                coordinator_address=cluster.coordinator,
                num_processes=cluster.num_processes,
                process_id=cluster.process_id,
                initialization_timeout=timeout + 60,  # the watchdog speaks first
            )
        finally:
            watchdog.cancel()
    keras.distribution.set_distribution(
        # Each process feeds its own rows (`shard`), so Keras must not shard again.
        keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False)
    )
    return cluster


def cluster_did_not_form(cluster, timeout):
    print(
        f"error: the cluster did not form within {timeout}s: process {cluster.process_id} of "
        f"{cluster.num_processes} waited for the others at {cluster.coordinator}; check "
        f"{ADDRESSES} (process 0's host:port, reachable from every host) and that all "
        f"{cluster.num_processes} processes started.",
        file=sys.stderr,
        flush=True,
    )
    os._exit(2)


def current():
    """This process's `Cluster` once `start` ran (under data parallelism), else None."""
    if not isinstance(keras.distribution.distribution(), keras.distribution.DataParallel):
        return None
    import jax

    return Cluster(jax.process_index(), jax.process_count())


def shard(dataset, cluster):
    """Each global batch of `dataset` -> this process's equal share of its rows.

    Every process reads the same batches in the same order (same seed), so the shares
    cover each global batch once; the batch size must split evenly (evaluation batches
    are padded with zero-weight rows first, see `pipeline.pad_batch_to_multiple`).
    """
    if cluster is None or cluster.num_processes == 1:
        return dataset
    count, index = cluster.num_processes, cluster.process_id

    def rows(value):
        size = tf.shape(value)[0] // count
        return value[index * size : (index + 1) * size]

    return dataset.map(lambda *batch: tf.nest.map_structure(rows, batch))


def replicated(arrays):
    """Host arrays (the same on every process) -> arrays replicated on all processes'
    devices: what a compiled function over replicated weights takes as input."""
    import jax

    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("batch",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in arrays.items()}


def checksums(model):
    """[sum, sum of squares] of the model's weights as each process holds them, for every
    process: equal rows mean the processes trained the same model. All must call it."""
    from jax.experimental import multihost_utils

    local = [np.asarray(v.value.addressable_shards[0].data, np.float64) for v in model.weights]
    mine = np.array([sum(w.sum() for w in local), sum((w * w).sum() for w in local)])
    return multihost_utils.process_allgather(mine).tolist()


class local_only:
    """A context in which this process works on its own (saving a file from process 0):
    new arrays stay on its devices, so no other process has to join in."""

    def __enter__(self):
        self.saved = keras.distribution.distribution()
        keras.distribution.set_distribution(None)

    def __exit__(self, *exc):
        keras.distribution.set_distribution(self.saved)
