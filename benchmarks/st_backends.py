"""sentence-transformers' own CPU backends, the peer of `benchmarks.cpu_exports`: torch
float32, `backend="onnx"` (float32, and int8 from `export_dynamic_quantized_onnx_model`)
and `backend="openvino"` (its default, float32 forced, and static int8 as
`export_static_quantized_openvino_model` makes it).

    benchmarks/.venv-st/bin/python -m benchmarks.st_backends --model-dir DIR --texts FILE \
        --calibration FILE --work DIR

Run by `benchmarks.cpu_exports` in its own venv (`make bench-st-venv`): their ONNX export
needs optimum-onnx, which needs transformers < 4.58, while `benchmarks/.venv` holds the
sentence-transformers 6 the other benchmarks compare with. The runtimes (onnxruntime,
openvino, nncf) are pinned to the project's versions, so a difference is the model's
graph, not the runtime. Imports no TensorFlow. `--ours NAME=FOLDER` adds our ONNX or
OpenVINO exports to the same loop (`mtl_keras.runtime`, which needs no TensorFlow), so
theirs and ours are timed in one process, interleaved. Prints one JSON line:
{variant: {"end_to_end", "latency_ms_p50", "latency_ms_p95", "mb", "cosine_mean",
"cosine_min", "seconds_to_export"}} (ours without the cosine: a fine-tuned model, its
quality is measured against its own float32), medians of the repeats.
"""

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

LENGTH = 128
BATCH = 32


def build(model_dir, work, calibration):
    """{variant: SentenceTransformer} of every backend, exported once into `work`."""
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    folder = Path(work) / "st-model"
    if not folder.exists():
        shutil.copytree(model_dir, folder)
    models, seconds = {}, {}

    def load(name, **kwargs):
        started = time.perf_counter()
        models[name] = SentenceTransformer(str(folder), device="cpu", **kwargs)
        models[name].max_seq_length = LENGTH
        seconds[name] = time.perf_counter() - started

    load("st torch float32")
    load("st onnx float32", backend="onnx")
    models["st onnx float32"].save_pretrained(str(folder))  # keeps onnx/model.onnx
    started = time.perf_counter()
    isa = "avx512_vnni" if "avx512_vnni" in Path("/proc/cpuinfo").read_text() else "avx2"
    export_dynamic_quantized_onnx_model(models["st onnx float32"], isa, str(folder))
    load("st onnx int8", backend="onnx", model_kwargs={"file_name": f"onnx/model_qint8_{isa}.onnx"})
    seconds["st onnx int8"] += time.perf_counter() - started
    load("st openvino default", backend="openvino")
    models["st openvino default"].save_pretrained(str(folder))  # keeps openvino/
    load("st openvino float32", backend="openvino",
         model_kwargs={"ov_config": {"INFERENCE_PRECISION_HINT": "f32"}})  # fmt: skip
    started = time.perf_counter()  # from a model of its own: OVQuantizer changes it in place
    static_int8(SentenceTransformer(str(folder), device="cpu", backend="openvino"), folder,
                calibration)  # fmt: skip
    load("st openvino int8", backend="openvino",
         model_kwargs={"file_name": "openvino/openvino_model_qint8_quantized.xml"})  # fmt: skip
    seconds["st openvino int8"] += time.perf_counter() - started
    return models, seconds, folder


def static_int8(model, folder, calibration):
    """`export_static_quantized_openvino_model`'s steps (OVQuantizer, its default
    OVQuantizationConfig, texts padded to 384 as it pads them) on local calibration texts:
    it would download GLUE SST-2, and nothing downloads here."""
    import datasets
    from optimum.intel.openvino import OVConfig, OVQuantizationConfig, OVQuantizer

    config = OVQuantizationConfig()
    quantizer = OVQuantizer.from_pretrained(model.transformers_model)
    features = model.tokenizer(calibration, padding="max_length", max_length=384, truncation=True)
    dataset = datasets.Dataset.from_dict(dict(features))
    saved = Path(folder) / "openvino-int8"
    quantizer.quantize(
        dataset, save_directory=str(saved), ov_config=OVConfig(quantization_config=config)
    )
    for suffix in (".xml", ".bin"):
        shutil.copy(saved / "openvino" / f"openvino_model{suffix}",
                    Path(folder) / "openvino" / f"openvino_model_qint8_quantized{suffix}")  # fmt: skip


def folder_mb(folder, pattern):
    """MiB, as `benchmarks.exports.folder_mb` counts our folders (not imported: this venv
    runs without TensorFlow, which that module's imports bring)."""
    return sum(p.stat().st_size for p in Path(folder).glob(pattern) if p.is_file()) / 2**20


FILES = {  # the files each variant runs from
    "st torch float32": "model.safetensors",
    "st onnx float32": "onnx/model.onnx",
    "st onnx int8": "onnx/model_qint8_*.onnx",
    "st openvino default": "openvino/openvino_model.*",
    "st openvino float32": "openvino/openvino_model.*",
    "st openvino int8": "openvino/openvino_model_qint8_quantized.*",
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="the Hugging Face folder")
    parser.add_argument("--texts", required=True, help="a JSON list of the texts to encode")
    parser.add_argument("--calibration", required=True, help="a JSON list of 300 texts")
    parser.add_argument("--work", required=True, help="a folder for the exports")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-calls", type=int, default=90)
    parser.add_argument("--ours", action="append", default=[], metavar="NAME=FOLDER")
    args = parser.parse_args(argv)
    texts = json.loads(Path(args.texts).read_text())
    calibration = json.loads(Path(args.calibration).read_text())
    models, seconds, folder = build(args.model_dir, args.work, calibration)
    ours = dict(item.split("=", 1) for item in args.ours)
    if ours:
        from mtl_keras.runtime.predictor import ExportedEncoder

        models.update({name: ExportedEncoder(path, LENGTH) for name, path in ours.items()})
    singles = [[texts[i]] for i in np.random.default_rng(0).integers(0, len(texts),
                                                                     args.latency_calls)]  # fmt: skip
    times = {name: {"end_to_end": [], "latency_ms": []} for name in models}
    for model in models.values():  # warm-up
        model.encode(texts[:64], batch_size=BATCH)
    for _ in range(args.repeats):
        for name, model in models.items():  # interleaved: drift hits all alike
            start = time.perf_counter()
            model.encode(texts, batch_size=BATCH)
            times[name]["end_to_end"].append(time.perf_counter() - start)
            for single in singles[: args.latency_calls // args.repeats]:
                start = time.perf_counter()
                model.encode(single)
                times[name]["latency_ms"].append(1000 * (time.perf_counter() - start))
    base = models["st torch float32"].encode(texts, batch_size=BATCH, normalize_embeddings=True)
    rows = {}
    for name, model in models.items():
        rows[name] = {"end_to_end": len(texts) / float(np.median(times[name]["end_to_end"])),
                      "latency_ms_p50": float(np.percentile(times[name]["latency_ms"], 50)),
                      "latency_ms_p95": float(np.percentile(times[name]["latency_ms"], 95))}  # fmt: skip
        if name in ours:
            rows[name]["mb"] = folder_mb(ours[name], "*")
            continue
        cosine = np.sum(model.encode(texts, batch_size=BATCH, normalize_embeddings=True) * base, 1)
        rows[name].update(mb=folder_mb(folder, FILES[name]), cosine_mean=float(cosine.mean()),
                          cosine_min=float(cosine.min()), seconds_to_export=seconds[name])  # fmt: skip
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
