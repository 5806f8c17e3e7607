"""`KINDS`: the task kinds by name, as sentence-transformers registers its losses: the name
is what a saved model records. A new kind is one class (a `kind.Kind`) added here."""

from mtl_keras.tasks.classification import (
    MultiLabelClassification,
    PairClassification,
    SentenceClassification,
)
from mtl_keras.tasks.pairs import Contrastive, PairSimilarity
from mtl_keras.tasks.token import TokenClassification

KINDS = {
    kind.name: kind
    for kind in (
        SentenceClassification(),
        TokenClassification(),
        PairSimilarity(),
        MultiLabelClassification(),
        PairClassification(),
        Contrastive(),
    )  # fmt: skip
}
