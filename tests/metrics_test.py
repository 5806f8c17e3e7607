import numpy as np

from mtl_keras.data.sources import NER_TAGS
from mtl_keras.evaluation.metrics import EntityF1, MacroF1, entity_f1_by_type, entity_spans

T = {name: i for i, name in enumerate(NER_TAGS)}


def ids(*tags):
    return [T[t] for t in tags]


def test_entity_spans_conlleval_rules():
    spans = entity_spans(
        ids("B-person", "I-person", "O", "I-geo-loc", "B-geo-loc", "I-person"), NER_TAGS
    )
    assert spans == {(0, 2, "person"), (3, 4, "geo-loc"), (4, 5, "geo-loc"), (5, 6, "person")}


def test_entity_f1_counts_exact_spans_on_weighted_positions():
    y_true = np.array([ids("O", "B-person", "I-person", "O", "B-geo-loc", "O")])
    logits = np.full((1, 6, len(NER_TAGS)), -5.0, "float32")
    # Prediction: person span correct, geo-loc predicted as company.
    for i, t in enumerate(["O", "B-person", "I-person", "O", "B-company", "O"]):
        logits[0, i, T[t]] = 5.0
    weight = np.array([[0, 1, 1, 1, 1, 0]], "float32")  # [CLS] and [SEP] not counted
    metric = EntityF1(NER_TAGS)
    metric.update_state(y_true, logits, weight)
    # tp=1, predicted=2, gold=2 -> F1 = 0.5
    np.testing.assert_allclose(float(metric.result()), 0.5)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_entity_f1_ignores_unweighted_pieces():
    y_true = np.array([ids("B-person", "I-person")])
    logits = np.full((1, 2, len(NER_TAGS)), -5.0, "float32")
    logits[0, 0, T["B-person"]] = logits[0, 1, T["B-geo-loc"]] = 5.0  # wrong on a ## piece
    metric = EntityF1(NER_TAGS)
    metric.update_state(y_true, logits, np.array([[1.0, 0.0]], "float32"))
    np.testing.assert_allclose(float(metric.result()), 1.0)


def test_macro_f1_from_sparse_labels_and_logits():
    metric = MacroF1(num_classes=3)
    y_true = np.array([0, 1, 2, 2])
    logits = np.eye(3, dtype="float32")[[0, 1, 2, 1]] * 4
    metric.update_state(y_true, logits)
    # per class F1: 1.0, 2/3, 2/3 -> macro 7/9
    np.testing.assert_allclose(float(metric.result()), 7 / 9, rtol=1e-5)
    weighted = MacroF1(num_classes=3)
    weighted.update_state(y_true, logits, np.array([1, 1, 1, 0], "float32"))
    np.testing.assert_allclose(float(weighted.result()), 1.0, rtol=1e-5)
    assert MacroF1.from_config(metric.get_config()).num_classes == 3


def test_entity_f1_by_type_next_to_the_micro_figure():
    y_true = [ids("O", "B-person", "I-person", "O", "B-geo-loc", "O", "B-person")]
    y_pred = [ids("O", "B-person", "I-person", "O", "B-company", "O", "O")]
    weight = [np.array([0, 1, 1, 1, 1, 1, 1])]
    by_type = entity_f1_by_type(y_true, y_pred, weight, NER_TAGS)
    # person: 1 of 2 gold found, 1 predicted -> 2/3; geo-loc and company: 0; others: none.
    assert by_type["person"] == np.float64(2 / 3).item()
    assert by_type["geo-loc"] == 0.0 and by_type["company"] == 0.0
    assert set(by_type) == {t[2:] for t in NER_TAGS if t != "O"}
