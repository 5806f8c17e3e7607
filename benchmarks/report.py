"""Write BENCHMARKS.md from benchmarks/results/<cpu>/*.json: one part per CPU."""

import json
from pathlib import Path

from benchmarks.common import RESULTS


def read(folder, name):
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def made_at(result):
    env = result["environment"]
    if "commit" not in env:
        return (f"Measured {env['date']} at a commit before 3fa4443, on a {env['cpus']}-CPU "
                "machine whose CPU model and instruction sets were not recorded.")  # fmt: skip
    flags = " ".join(f for f in env.get("cpu_vector_flags", []) if f.startswith("avx"))
    note = f" ({env['commit_note']})" if env.get("commit_note") else ""
    return (f"Measured at commit {env['commit']}{note}, {env['date']}, on {env['cpu_model']} "
            f"({env['cpus']} CPUs; {flags}).")  # fmt: skip


def encode_section(encode):
    rows = [
        f"| {key.split('_', 1)[1]} | {key.split('_', 1)[0]} | {r['mtl_keras']['median']:.1f} | "
        f"{r['sentence_transformers']['median']:.1f} | **{r['ratio_median']:.2f}x** | "
        f"{r['min_cosine_between_outputs']:.6f} | {bound(r)} |{of_peak(r)}"
        for key, r in encode.items()
        if isinstance(r, dict) and "ratio_median" in r
    ]
    peak = encode.get("matmul_peak")
    return [
        "",
        "### Encode (`python -m benchmarks.encode`)",
        "",
        made_at(encode),
        "",
        f"{encode['sentences']} real sentences per set, batch {encode['batch_size']}, max length "
        f"{encode['max_length']}, median of {encode['repeats']} repeats; each library in its own "
        "process. `avx2` caps both libraries at AVX2 ("
        + ", ".join(f"`{k}={v}`" for k, v in encode["avx2_only_env"].items())
        + ").",
        "",
        "| set | instruction set | mtl_keras sentences/s | sentence-transformers | ratio | "
        "min cosine | bound: mtl_keras without GELU |"
        + (" GFLOP/s, % of peak: mtl_keras | sentence-transformers |" if peak else ""),
        "|---|---|---|---|---|---|---|" + ("---|---|" if peak else ""),
        *rows,
        "",
        "The bound column is our encoder with its GELU switched off (not a model): the most that "
        "fusing or rewriting the element-wise work could give, as sentences/s and as a ratio to "
        "sentence-transformers.",
        *peak_lines(encode),
    ]


def cell(value, fmt):
    return "–" if value is None else format(value, fmt)


def of_peak(row):
    """GFLOP/s of the padded batches each side ran and their share of the matmul peak."""
    if "fraction_of_peak" not in row["mtl_keras"]:
        return ""
    cells = [f" {row[s]['gflops_padded']:.0f} ({row[s]['fraction_of_peak']:.0%}) |"
             for s in ("mtl_keras", "sentence_transformers")]  # fmt: skip
    return "".join(cells)


def peak_lines(encode):
    peak = encode.get("matmul_peak")
    if not peak:
        return []
    shapes = "; ".join(
        f"{library}: " + ", ".join(f"{shape} {v:.0f}" for shape, v in row.items())
        for library, row in peak["gflops"].items()
    )
    flops = encode["flops"]
    sets = "; ".join(
        f"{name} {f['padded'] / encode['sentences'] / 1e9:.2f} GFLOP per sentence as padded "
        f"({f['padded_word_pieces'] / f['word_pieces']:.2f}x the real word pieces' "
        f"{f['word_pieces'] / encode['sentences']:.0f} per sentence)"
        for name, f in flops.items()
    )
    return [
        "",
        f"**Against the machine's own limit.** fp32 matmul peak measured in the same run "
        f"(`benchmarks.peak`, each library in its own process, default threads): "
        f"**{peak['peak_gflops']:.0f} GFLOP/s** ({peak['peak_from']}); GFLOP/s per library "
        f"and shape: {shapes}. The work is counted from the shapes that ran "
        f"(`benchmarks.flops`: the layers' matmuls and attention, batches sorted by length "
        f"and padded to their longest, as both libraries batch): {sets}. The `avx2` rows are "
        "held against the same native peak.",
    ]


def bound(row):
    return f"{row['mtl_keras_bound']['median']:.1f} ({row['bound_ratio_median']:.2f}x)"


def evaluation_section(result):
    if not result:
        return []
    return [
        "",
        "### Evaluation against encode (`python -m benchmarks.evaluation`)",
        "",
        made_at(result),
        "",
        f"A run's final evaluation of the topic + sentiment test splits ({result['sentences']} "
        "texts: reading, tokenizing, sorting, forward pass and all metrics) against "
        "`SentenceEncoder.encode` of the same texts, in one process: "
        f"{result['evaluation_sentences_per_s']:.1f} vs {result['encode_sentences_per_s']:.1f} "
        f"sentences/s, **{result['ratio']:.2f}x** (target ≥ 0.8x).",
        *evaluation_peak(result),
    ]


def evaluation_peak(result):
    if "matmul_peak" not in result:
        return []
    peak, flops = result["matmul_peak"], result["flops"]
    return [
        "",
        f"**Against the machine's own limit:** {flops['padded'] / result['sentences'] / 1e9:.2f} "
        "GFLOP per text as padded (`benchmarks.flops`); evaluation "
        f"{result['evaluation_gflops']:.0f} GFLOP/s (**{result['evaluation_fraction_of_peak']:.0%}** "
        f"of the fp32 matmul peak of {peak['peak_gflops']:.0f} GFLOP/s, {peak['peak_from']}, "
        f"measured in the same run), encode {result['encode_gflops']:.0f} GFLOP/s "
        f"({result['encode_fraction_of_peak']:.0%}).",
    ]


def train_epoch_section(result):
    if not result:
        return []
    peak = result.get("matmul_peak")
    rows = [
        f"| {label} | {r['examples_per_s']:.1f} | {r['epoch_seconds'][-1]:.1f} | "
        f"{r['peak_rss_mb']:.0f} |"
        + (f" {r['gflops']:.0f} ({r['fraction_of_peak']:.0%}) |" if peak else "")
        for label, r in (
            ("mtl_keras (`train`'s data + `fit`, length buckets)", result["keras"]),
            ("mtl_keras without length buckets", result["keras_no_buckets"]),
            ("mtl_keras, buckets + XLA (lengths rounded up to 16)", result["keras_xla"]),
            ("bound: mtl_keras without dropout and GELU (not a model)", result["keras_bound"]),
            ("torch + transformers, `LengthGroupedSampler`", result["torch"]),
        )
    ]
    return [
        "",
        "### Fine-tuning epoch (`python -m benchmarks.train_epoch`)",
        "",
        made_at(result),
        "",
        f"Topic + sentiment, {result['examples_per_task']} real training examples per task, "
        f"batch {result['batch_size']}, length up to {result['max_length']}; second epoch timed; "
        "each side in its own process.",
        "",
        "| trainer | examples/s | epoch seconds | peak RSS (MB) |"
        + (" GFLOP/s (% of peak) |" if peak else ""),
        "|---|---|---|---|" + ("---|" if peak else ""),
        *rows,
        "",
        f"mtl_keras against torch: **{result['ratio']:.2f}x**; length buckets: "
        f"{result['bucket_speedup']:.2f}x; XLA on top: {result['xla_speedup']:.2f}x; the bound "
        f"against torch: {result['bound_ratio']:.2f}x (the most that fusing or rewriting dropout "
        "and GELU could give).",
        *(
            [
                "",
                f"GFLOP/s: the work of the timed epoch's batches as each side padded them "
                f"(`benchmarks.flops`, 3x the forward) over its seconds, against the fp32 matmul "
                f"peak of {peak['peak_gflops']:.0f} GFLOP/s ({peak['peak_from']}) measured in the "
                "same run.",
            ]
            if peak
            else []
        ),
    ]


def serving_workload(serving):
    """What the sentences were: BBC text changed from first paragraphs to whole articles."""
    half = serving["sentences"] // 2
    if "mean_word_pieces" not in serving:
        return (f"The sentences: {half} BBC first paragraphs and {half} tweets (BBC text before "
                "dataset 1.1.0, 5cefc0f; later runs encode whole articles).")  # fmt: skip
    pieces = serving["mean_word_pieces"]
    return (f"The sentences: {half} BBC articles ({pieces['bbc']:.0f} word pieces on average, "
            f"cut at 128), then {half} tweets ({pieces['tweets']:.0f}).")  # fmt: skip


def exports_workload(exports):
    """The exports benchmark's sentences: `real_sentences(1000)`, as serving's are made."""
    if "mean_word_pieces" in exports:
        return serving_workload(exports)
    half = exports["parity"]["sentences"] // 2
    return (f"The sentences: {half} BBC texts, then {half} tweets (whole articles since "
            "dataset 1.1.0, 5cefc0f, first paragraphs before; this run did not record their "
            "word pieces).")  # fmt: skip


def serving_peak(serving):
    """The signature's GFLOP/s at batch 32 and one sentence at a time, against the matmul
    peak measured in the same run."""
    if "matmul_peak" not in serving:
        return []
    peak, batch = serving["matmul_peak"], serving["throughput_batch_32"]
    single = serving["single_sentence_latency_ms"]
    return [
        "",
        f"**Against the machine's own limit:** at batch 32, {batch['gflops_padded']:.0f} GFLOP/s "
        f"(**{batch['fraction_of_peak']:.0%}** of the fp32 matmul peak of "
        f"{peak['peak_gflops']:.0f} GFLOP/s, {peak['peak_from']}, measured in the same run; "
        "batches in the order they came, each cut to its longest sentence); one sentence at "
        f"a time, {single['gflops']:.0f} GFLOP/s ({single['fraction_of_peak']:.0%}; each "
        "call's work over its latency).",
    ]


def train_step_peak(train):
    """Each side's GFLOP/s and share of the matmul peak measured in the same run."""
    if "matmul_peak" not in train:
        return []
    peak = train["matmul_peak"]
    return [
        "",
        f"**Against the machine's own limit:** a step is {train['step_gflop']:.0f} GFLOP "
        "(3x the forward's matmuls and attention, `benchmarks.flops.training_flops`); Keras "
        f"{train['keras_gflops']:.0f} GFLOP/s (**{train['keras_fraction_of_peak']:.0%}** of the "
        f"fp32 matmul peak of {peak['peak_gflops']:.0f} GFLOP/s, {peak['peak_from']}, measured "
        f"in the same run), torch {train['torch_gflops']:.0f} GFLOP/s "
        f"({train['torch_fraction_of_peak']:.0%}).",
    ]


def train_step_bound(train):
    return [
        "",
        "Bound: the same Keras step with every dropout and GELU switched off (not a model; the "
        "most any fusing or rewriting of that element-wise work could give): "
        f"{train['keras_bound_steps_per_s']:.2f} steps/s, "
        f"{train['bound_ratio']:.2f}x torch.",
    ]


def profile_section(result):
    if not result:
        return []
    lines = ["", "### Where the time goes (`python -m benchmarks.profile_ops`)", "",
             made_at(result), "",
             f"TensorFlow's profiler on encoding {result['sentences']} BBC articles (length 128) "
             f"and on {result['steps']} topic + sentiment train steps (batch 32); op time "
             "grouped by place in the model, scaled to the same work timed without the "
             "profiler; each product group's GFLOP/s against the fp32 matmul peak of "
             f"{result['matmul_peak']['peak_gflops']:.0f} GFLOP/s measured in the same run.", "",
             "| group | encode: share of time | GFLOP/s (% of peak) | train step: share | "
             "GFLOP/s (% of peak) |",
             "|---|---|---|---|---|"]  # fmt: skip
    encode, train = result["encode"]["groups"], result["train_step"]["groups"]

    def cells(groups, name):
        row = groups.get(name)
        if row is None:
            return "– | – |"
        rate = f"{row['gflops']:.0f} ({row['fraction_of_peak']:.0%})" if "gflops" in row else ""
        return f"{row['share_of_op_time']:.1%} | {rate} |"

    for name in dict.fromkeys([*encode, *train]):
        lines.append(f"| {name} | {cells(encode, name)} {cells(train, name)}")
    lines += [""] + [
        f"{label}: {r['overall_gflops']:.0f} GFLOP/s, **{r['overall_fraction_of_peak']:.0%}** of "
        f"the peak; with every product at the peak and the other ops as measured, at most "
        f"**{r['ceiling_fraction_of_peak']:.0%}**."
        for label, r in (("Encode", result["encode"]), ("Train step", result["train_step"]))
    ]
    return lines


def exports_rate(row):
    """Sentences/s through the signature (results before 541a58b recorded only
    `sentences_per_s_median`)."""
    return row["median"] if "median" in row else row["sentences_per_s_median"]


def exports_section(exports):
    if not exports:
        return []
    parity, serving = exports["parity"], exports["serving"]
    f32 = serving["float32"]
    tasks = [k.removesuffix("_test_accuracy") for k in f32 if k.endswith("_test_accuracy")]
    measured = "gflops_padded" in f32  # results before 541a58b have no peak or latency
    extra = ["GFLOP/s (% of peak)", "one sentence p50 / p95 (ms)"] if measured else []

    def cells(r):
        rate = [f"{r['gflops_padded']:.0f} ({r['fraction_of_peak']:.0%})",
                f"{r['latency_ms_p50']:.1f} / {r['latency_ms_p95']:.1f}"] if measured else []  # fmt: skip
        return [f"{r['saved_model_mb']:.0f}", f"{exports_rate(r):.1f}", *rate,
                *(f"{r[f'{t}_test_accuracy']:.4f}" for t in tasks)]  # fmt: skip

    header = ["weights", "SavedModel (MB)", "sentences/s", *extra,
              *(f"{t} test accuracy ({f32[f'{t}_test_examples']})" for t in tasks)]  # fmt: skip
    rows = [f"| {'float32' if kind == 'float32' else f'`{kind}`'} | " + " | ".join(cells(r)) + " |"
            for kind, r in serving.items()]  # fmt: skip
    trained = "a short run trained by the script" if exports["trained_here"] else exports["model"]
    limit = (f" GFLOP/s: the batches' work as they came, each cut to its longest sentence, "
             f"against the fp32 matmul peak of {exports['matmul_peak']['peak_gflops']:.0f} "
             f"GFLOP/s ({exports['matmul_peak']['peak_from']}) measured in the same run; "
             "one sentence: single calls interleaved with the batches." if measured else "")  # fmt: skip
    return [
        "",
        "### Exports (`python -m benchmarks.exports`)",
        "",
        made_at(exports) + f" Model: {trained}.",
        "",
        f"The fine-tuned encoder exported with `--format sentence-transformers` and loaded by "
        f"`SentenceTransformer(folder)` in torch (modules: "
        f"{', '.join(parity['sentence_transformers_modules'])}): min cosine "
        f"**{parity['sentence_transformers_min_cosine']:.7f}** to the Keras model's own embedding "
        f"over {parity['sentences']} real sentences; `--format keras-hub` reloaded by "
        f"`SentenceEncoder.from_preset`: {parity['keras_hub_min_cosine']:.7f}.",
        "",
        "TF Serving export, float32 against `--quantize` (same model, same sentences, runs "
        "interleaved in one process; sentences/s through the signature at batch 32, median)."
        + f"{limit} {exports_workload(exports)}",
        "",
        "| " + " | ".join(header) + " |",
        "|---" * len(header) + "|",
        *rows,
        "",
        " ".join(
            f"`{kind}` is {f32['saved_model_mb'] / r['saved_model_mb']:.1f}x smaller and runs at "
            f"{exports_rate(r) / exports_rate(f32):.2f}x the float32 speed."
            for kind, r in serving.items()
            if kind != "float32"
        ),
    ]


def cpu_exports_section(result):
    """The CPU serving formats side by side (`benchmarks.cpu_exports`)."""
    if not result:
        return []
    peaks, quality = result["peaks"], result["quality"]
    rows = []
    for name, r in result["variants"].items():
        q = quality.get(name) or {k: r[k] for k in ("cosine_mean", "cosine_min") if k in r}
        equal = [v for k, v in q.items() if k.endswith("_labels_equal")]
        work = "–"
        if r.get("gflops") is not None:
            work = (
                f"{r['gflops']:.0f} ({cell(r.get('fraction_of_peak'), '.0%')} of {r['precision']})"
            )
        rows.append(
            f"| {name} | {cell(r['mb'], '.0f')} | {r['end_to_end']:.1f} | "
            f"**{r['vs_tf_float32']:.2f}x** | {cell(r.get('model_only'), '.1f')} | "
            f"{work} | "
            f"{r['latency_ms_p50']:.1f} / {r['latency_ms_p95']:.1f} | "
            + (f"{q['cosine_mean']:.4f} / {q['cosine_min']:.4f} | {cell(min(equal, default=None), '.1%')} |"
               if q else "– | – |")
        )  # fmt: skip
    return [
        "",
        "### Serving on the CPU: every format side by side (`python -m benchmarks.cpu_exports`)",
        "",
        made_at(result) + f" Model: {result['model']}.",
        "",
        f"{result['sentences']} real sentences (BBC articles, mean "
        f"{result['mean_word_pieces']['bbc']:.0f} word pieces, and tweets, "
        f"{result['mean_word_pieces']['tweets']:.0f}; length {result['length']}), batches of "
        "32 sorted by length (the SavedModel: in arrival order), one process, variants "
        f"interleaved, median of {result['repeats']}. End to end: raw strings in, labels out, "
        "tokenization included; model: the same token ids, the forward pass alone. Peaks "
        f"measured in the same run: fp32 matmul {peaks['fp32']:.0f} GFLOP/s, bf16 matmul "
        f"(OpenVINO) {peaks.get('bf16', float('nan')):.0f} GFLOP/s, int8 MatMulInteger (ONNX "
        f"Runtime) {peaks.get('int8', float('nan')):.0f} GOP/s; an int8 model keeps some "
        "products in float32, so its fraction of the int8 peak understates it.",
        *peer_lines(result),
        "",
        "| variant | MB | sentences/s end to end | vs TF float32 | model only | G(FL)OP/s "
        "(of its peak) | one sentence p50 / p95 (ms) | cosine to float32 mean / min | labels "
        "equal |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def peer_lines(result):
    """What the sentence-transformers rows are, and our fastest export against theirs."""
    peer = result.get("fastest_peer")
    if not peer:
        return []
    variants = result["variants"]
    same = [n for n in variants if n.endswith("(same process)")]
    ours = max(same or [n for n in variants if n.startswith(("onnx", "openvino"))],
               key=lambda n: variants[n]["end_to_end"])  # fmt: skip
    ratio = variants[ours]["end_to_end"] / variants[peer]["end_to_end"]
    return [
        "",
        "The `st` rows are sentence-transformers' own backends (`benchmarks.st_backends`, "
        "sentence-transformers 5.7.0 in `benchmarks/.venv-st` with the same onnxruntime, "
        "openvino and nncf) on the same texts right after ours, all-MiniLM-L6-v2 without "
        "heads; their int8 exports are `export_dynamic_quantized_onnx_model` and the steps of "
        "`export_static_quantized_openvino_model`, calibrated on the same 300 texts; their "
        "cosine is to their own torch float32. The rows marked *(same process)* are our "
        "exports again, timed in that process interleaved with theirs (`mtl_keras.runtime` "
        "needs no TensorFlow): the fair comparison. Our fastest "
        f"({ours}) runs at **{ratio:.2f}x** their fastest ({peer}).",
    ]


def precision_section(result):
    """Our train step in float32 and in mixed_bfloat16 (`benchmarks.precision`)."""
    if not result:
        return []
    rows = rate_rows(result, ("gflops", "peak_gflops"))
    text = (
        f"Topic + sentiment, batch {result['batch_size']}, {result['steps']} real batches, each "
        "precision in its own process (float32 twice, the better kept), against the matmul "
        "peak of its precision measured in the same run: mixed_bfloat16 at "
        f"**{result['bf16_vs_float32']:.2f}x** float32's steps/s."
    )
    header = ["precision", "steps/s", "GFLOP/s", "peak", "of the peak"]
    return section("Training precision (`python -m benchmarks.precision`)", result, text,
                   header, rows)  # fmt: skip


def rate_rows(result, middle):
    """Table rows: each variant's steps/s, the `middle` figures, its fraction of the peak."""
    return [f"| {name} | {r['steps_per_s']:.3f} | " + " | ".join(f"{r[k]:.0f}" for k in middle)
            + f" | {r['fraction_of_peak']:.0%} |" for name, r in result["rows"].items()]  # fmt: skip


def section(title, result, text, header, rows):
    """A results section: its title, when and where it was measured, what, the table."""
    return ["", f"### {title}", "", made_at(result), "", text, "",
            "| " + " | ".join(header) + " |", "|---" * len(header) + "|", *rows]  # fmt: skip


def data_scale_section(result):
    """Own files of a million rows and more, read and streamed into training."""
    if not result:
        return []
    rows = []
    for count, run in sorted(result["runs"].items(), key=lambda item: int(item[0])):
        first, end = run["first_step"], run.get("end_to_end", {})
        rows.append(
            f"| {int(count):,} | {run.get('commit', '–')} | {run['shards']} | {run['file_mb']:.0f} | "
            f"{run['read']['read_seconds']:.1f} | {first['first_step_seconds']:.0f} | "
            f"{first['peak_rss_mb'] / 1024:.2f} | {first['stream_over_train']:.0f}x | "
            f"{cell(end.get('wall_seconds'), '.0f')} | "
            f"{cell(end.get('peak_rss_mb') and end['peak_rss_mb'] / 1024, '.2f')} |"
        )
    return [
        "",
        "### Own data at scale (`python -m benchmarks.data_scale`)",
        "",
        made_at(result),
        "",
        "A `text,label` CSV of real text (a tweet and a few words of a BBC sentence per row), "
        "each size at the commit its row names, each measurement in its own process. *Read*: `tasks.from_files` (read, check every "
        "row, split by hash, label set). *First step*: process start (imports included) to "
        "the end of the first train step at `--max-length 64`, batch 32, and that process's "
        "peak memory. *Stream*: the examples/s the training stream delivers alone over those a "
        "train step consumes. *End to end*: `experiments.run --task mine=FILE --epochs 1 "
        "--max-steps 30 --max-eval-examples 500 --max-length 64 --no-sts`, wall and peak "
        "memory (`/usr/bin/time -v`).",
        "",
        "| rows | commit | files | MB | read (s) | first step (s) | its peak (GB) "
        "| stream / train | end to end (s) | its peak (GB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def hard_negatives_section(result):
    """A contrastive step with a hard negative per anchor against in-batch only."""
    if not result:
        return []
    rows = rate_rows(result, ("step_gflop", "gflops"))
    text = (
        f"STS-B pairs scored 4 or more, batch {result['batch_size']}, length "
        f"{result['max_length']}, {result['steps']} real batches per run, the variants "
        "alternated twice in one process (the better run kept), against the fp32 matmul peak "
        "measured first in the same run. A step with one hard negative per anchor takes "
        f"**{result['step_time_ratio']:.2f}x** the in-batch step's time: a third text per "
        "example through the encoder."
    )
    if "matryoshka_step_time_ratio" in result:
        widths = ", ".join(map(str, result["matryoshka_widths"]))
        text += (f" Matryoshka loss at widths {widths} (the same batches) takes "
                 f"**{result['matryoshka_step_time_ratio']:.2f}x**: one encoder pass, the "
                 "scores and loss again per width.")  # fmt: skip
    header = ["variant", "steps/s", "GFLOP per step", "GFLOP/s", "of the peak"]
    return section("Hard negatives and Matryoshka: the cost of a step "
                   "(`python -m benchmarks.hard_negatives`)",
                   result, text, header, rows)  # fmt: skip


def backends_peak_lines(result):
    """The train steps against the matmul peak measured in the same run (older results
    were made without it)."""
    if "matmul_peak" not in result:
        return []
    peak = result["matmul_peak"]
    return [
        "",
        f"**Against the machine's own limit:** a step is {result['step_gflop']:.0f} GFLOP "
        f"(`benchmarks.flops.training_flops`, padded); TensorFlow "
        f"{result['tensorflow_gflops']:.0f} GFLOP/s "
        f"(**{result['tensorflow_fraction_of_peak']:.0%}** of the fp32 matmul peak of "
        f"{peak['peak_gflops']:.0f} GFLOP/s, {peak['peak_from']}, measured in the same run), "
        f"JAX {result['jax_gflops']:.0f} GFLOP/s ({result['jax_fraction_of_peak']:.0%}).",
    ]


def backends_section(result):
    """JAX against TensorFlow, and one process against two (`benchmarks.backends`)."""
    if not result:
        return []
    one, two = result["one_process"], result["two_processes"]
    return [
        "",
        "### JAX backend and data-parallel scaling (`python -m benchmarks.backends`)",
        "",
        made_at(result),
        "",
        f"Train step (topic + sentiment, batch 32, lengths padded to multiples of 16, mean "
        f"{result['mean_padded_length']:.0f}): TensorFlow {result['tensorflow_steps_per_s']:.3f} "
        f"steps/s, JAX {result['jax_steps_per_s']:.3f}: JAX at "
        f"**{result['jax_over_tensorflow']:.2f}x** TensorFlow (each in its own process).",
        *backends_peak_lines(result),
        "",
        "| `experiments.launch` (JAX, data_parallel) | examples/s (last epoch) | epoch seconds "
        "| wall seconds |",
        "|---|---|---|---|",
        *(f"| {name} | {r['examples_per_s']:.1f} | "
          f"{', '.join(f'{s:.1f}' for s in r['epoch_seconds'])} | {r['wall_seconds']:.0f} |"
          for name, r in (("1 process, all cores", one), ("2 processes, half the cores each", two))),
        "",
        f"Two processes over one: **{result['two_process_efficiency']:.2f}** (the same global "
        f"batches; options: `{' '.join(result['scaling_options'])}`).",
    ]  # fmt: skip


def cpu_environment(folder):
    """(model name, vector instruction sets) of the CPU whose results a folder holds."""
    for path in sorted(folder.glob("*.json")):
        env = json.loads(path.read_text())["environment"]
        if "cpu_model" in env:
            return env["cpu_model"], set(env.get("cpu_vector_flags", ()))
    return folder.name, set()


def cpu_heading(cpu, flags, others):
    """'On AMD EPYC', or where another CPU shares the name, what tells them apart."""
    same_name = [f for name, f in others if name == cpu]
    if not same_name:
        return f"## On {cpu}"
    extra = sorted(flags - set.intersection(*same_name))
    missing = sorted(set.union(*same_name) - flags)
    tells = [f"with {', '.join(extra)}"] if extra else []
    tells += [f"without {', '.join(missing)}"] if missing else []
    return f"## On {cpu} ({'; '.join(tells) or 'the same instruction sets'})"


def cpu_part(folder, heading):
    """Every benchmark measured on one CPU, under a heading naming it."""

    def load(name):
        return read(folder, name)

    lines = []
    encode = load("encode")
    if encode:
        env = encode["environment"]
        lines += [
            "",
            f"Versions (encode's run): Python {env['python']}, "
            + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
            + ".",
            *encode_section(encode),
        ]
    lines += evaluation_section(load("evaluation"))
    lines += train_epoch_section(load("train_epoch"))
    serving = load("serving")
    if serving:
        lat = serving["single_sentence_latency_ms"]
        lines += [
            "",
            "### Serving signature (`python -m benchmarks.serving`)",
            "",
            made_at(serving),
            "",
            f"Exported SavedModel called from raw strings: {serving['throughput_batch_32']['median']:.1f} "
            f"sentences/s at batch 32 (median); one sentence: p50 {lat['p50']:.1f} ms, "
            f"p95 {lat['p95']:.1f} ms over {lat['calls']} calls.",
            serving_workload(serving),
            *serving_peak(serving),
        ]
    train = load("train_step")
    if train:
        lines += [
            "",
            "### Train step (`python -m benchmarks.train_step`)",
            "",
            made_at(train),
            "",
            f"Topic + sentiment, batch 32, mean padded length {train['mean_padded_length']:.0f}: "
            f"Keras {train['keras_steps_per_s']:.2f} steps/s vs torch + transformers "
            f"{train['torch_steps_per_s']:.2f} steps/s ({train['torch_threads']} threads): "
            f"**{train['ratio']:.2f}x** (each in its own process).",
            *train_step_peak(train),
            *train_step_bound(train),
        ]
    lines += profile_section(load("profile_ops"))
    lines += backends_section(load("backends"))
    cache = load("frozen_cache")
    if cache:
        c, u = cache["cached"], cache["uncached"]
        lines += [
            "",
            "### Frozen backbone: cached embeddings (`python -m benchmarks.frozen_cache`)",
            "",
            made_at(cache),
            "",
            "| run | seconds per epoch | data prep (s) | topic test acc | sentiment test acc |",
            "|---|---|---|---|---|",
            f"| cached (default) | {', '.join(f'{s:.2f}' for s in c['epoch_seconds'])} "
            f"| {c['data_seconds']:.1f} | {c['test']['topic']['accuracy']:.4f} | "
            f"{c['test']['sentiment']['accuracy']:.4f} |",
            f"| `--no-cache --no-length-buckets` | {', '.join(f'{s:.2f}' for s in u['epoch_seconds'])} | {u['data_seconds']:.1f} | "
            f"{u['test']['topic']['accuracy']:.4f} | {u['test']['sentiment']['accuracy']:.4f} |",
            "",
            f"Per epoch: **{cache['epoch_speedup_median']:.0f}x** faster; whole training (data preparation, "
            f"embedding, {cache['epochs']} epochs): {cache['speedup_including_cache_build']:.1f}x.",
        ]
    lines += exports_section(load("exports"))
    lines += cpu_exports_section(load("cpu_exports"))
    lines += precision_section(load("precision"))
    lines += data_scale_section(load("data_scale"))
    lines += hard_negatives_section(load("hard_negatives"))
    return ["", heading, *lines]


def main():
    lines = [
        "# Benchmarks",
        "",
        "Made by `make bench`: each script writes `benchmarks/results/<cpu>/<name>.json`, one",
        "folder per CPU (model name and vector instruction sets: the same code measures",
        "differently on AMD and Intel, and on two generations both named 'AMD EPYC'), and this",
        "file is `python -m benchmarks.report`. Speeds are ratios against a peer measured in the",
        "same run on the same machine. 2-core CPU numbers are noisy: compare within one run only.",
        "Nothing else ran on the machine during the measurements below (editing files aside),",
        "unless a section says otherwise.",
    ]
    folders = sorted(p for p in RESULTS.iterdir() if p.is_dir() and any(p.glob("*.json")))
    cpus = {folder: cpu_environment(folder) for folder in folders}
    for folder, (cpu, flags) in cpus.items():
        others = [env for other, env in cpus.items() if other != folder]
        lines += cpu_part(folder, cpu_heading(cpu, flags, others))
    Path("BENCHMARKS.md").write_text("\n".join(lines) + "\n")
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
