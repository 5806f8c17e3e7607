"""Running an exported model: ONNX Runtime for `model.onnx`, OpenVINO for `model.xml`.
Each engine maps {input name: int32 array} to {output name: float32 array}."""

from pathlib import Path

import numpy as np

from mtl_keras.errors import InputError


class OnnxEngine:
    """An ONNX Runtime session on the CPU."""

    def __init__(self, path, threads=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.outputs = [output.name for output in self.session.get_outputs()]

    def __call__(self, features):
        feed = {i.name: features[i.name] for i in self.session.get_inputs()}
        return dict(zip(self.outputs, self.session.run(self.outputs, feed), strict=True))


class OpenVinoEngine:
    """An OpenVINO model compiled for the CPU at `precision`: "f32", or "bf16" where the CPU
    has bfloat16 instructions. OpenVINO picks bfloat16 by itself on such CPUs unless told
    otherwise, so the precision is always set, never left to it."""

    def __init__(self, path, precision="f32", threads=None):
        import openvino as ov

        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.model = ov.Core().compile_model(str(path), "CPU", config)
        self.names = {port: port.get_any_name() for port in self.model.outputs}

    def __call__(self, features):
        inputs = {port.get_any_name(): features[port.get_any_name()] for port in self.model.inputs}
        result = self.model(inputs)
        return {name: np.asarray(result[port]) for port, name in self.names.items()}


ENGINES = {"onnx": ("model.onnx", OnnxEngine), "openvino": ("model.xml", OpenVinoEngine)}


def open_engine(folder, fmt, precision="f32", threads=None):
    """The engine of an export folder of format `fmt` (a key of `ENGINES`)."""
    if fmt not in ENGINES:
        raise InputError(f"'{folder}' is a {fmt} export; this runtime reads {', '.join(ENGINES)}.")
    name, engine = ENGINES[fmt]
    path = Path(folder) / name
    if not path.is_file():
        raise InputError(f"'{folder}' has no {name}: export it again (experiments.export).")
    if engine is OpenVinoEngine:
        return engine(path, precision, threads)
    return engine(path, threads)
