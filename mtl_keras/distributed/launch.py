"""Start the processes of a data-parallel run on this machine and watch them.

Each process gets Keras' cluster variables (`distributed.ADDRESSES`, ...) and its own
share of the CPU cores (`cores` each, by default the usable cores split evenly), so N
processes do not fight over them. If one process fails or is killed, the others are
stopped at once (they would otherwise wait for it until JAX's heartbeat times out);
rerunning the same command resumes from the last checkpoint. On several machines, set
the same variables per host (README, "More than one machine"); this module is only the
one-machine launcher.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from mtl_keras.distributed import cluster as distributed
from mtl_keras.errors import InputError


def free_port():
    """A TCP port nothing listens on now (for process 0's coordinator)."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def core_sets(processes, cores=None):
    """This machine's usable cores split into `processes` equal, disjoint sets."""
    available = sorted(os.sched_getaffinity(0))
    per = cores or max(len(available) // processes, 1)
    if per * processes > len(available):
        raise InputError(
            f"{processes} processes x {per} cores need {per * processes} cores; this machine "
            f"lets the run use {len(available)}."
        )
    return [available[i * per : (i + 1) * per] for i in range(processes)]


def launch(command, processes, port=None, cores=None, env=None, poll=0.2):
    """Run `command` (a list) as `processes` processes of one cluster; return the exit code.

    Every process writes to this terminal. Returns 0 when all finished well; else the
    first failure's code (128 + signal for a killed process), after stopping the others.
    """
    if processes < 1:
        raise InputError(f"--processes must be >= 1, got {processes}.")
    address = f"localhost:{port or free_port()}"
    children = []
    for index, cpus in enumerate(core_sets(processes, cores)):
        cluster = distributed.Cluster(index, processes, address)
        child_env = {**os.environ, **(env or {}), **cluster.env(), "KERAS_BACKEND": "jax"}
        children.append(
            subprocess.Popen(
                command,
                env=child_env,
                # Each process on its own cores: XLA and tf.data size their threads by them.
                preexec_fn=lambda cpus=cpus: os.sched_setaffinity(0, cpus),
            )
        )
    try:
        return supervise(children, poll)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def supervise(children, poll):
    """Wait for all; at the first failure stop the rest and return its exit code."""
    while True:
        codes = [child.poll() for child in children]
        failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            index, code = failed[0]
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            print(
                f"error: process {index} {how}; the others were stopped. Rerun the same "
                "command to resume from the last checkpoint.",
                file=sys.stderr,
                flush=True,
            )
            return 128 - code if code < 0 else code
        if all(code == 0 for code in codes):
            return 0
        time.sleep(poll)
