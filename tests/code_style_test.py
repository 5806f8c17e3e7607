"""House rules that a reviewer would otherwise have to check by eye."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 60


def test_no_function_is_longer_than_60_lines():
    too_long = []
    for path in sorted([*ROOT.glob("mtl_keras/**/*.py"), *ROOT.glob("experiments/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert not too_long, too_long


KIND_NAMES = {"sentence", "token", "pair", "multi_label", "pair_classification", "contrastive"}


def test_no_task_kind_is_compared_outside_the_kind_classes():
    """What differs between kinds lives in `mtl_keras/kinds.py`; elsewhere code asks the
    task's kind (`task.spec`), so a new kind is one class, not a hunt for switches."""
    compared = []
    for path in sorted([*ROOT.glob("mtl_keras/**/*.py"), *ROOT.glob("experiments/*.py")]):
        if path.name == "kinds.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            kind_attribute = any(isinstance(s, ast.Attribute) and s.attr == "kind" for s in sides)
            kind_name = any(isinstance(s, ast.Constant) and s.value in KIND_NAMES for s in sides)
            if kind_attribute or kind_name:
                compared.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not compared, compared


def test_nothing_is_labelled_task_1_to_4():
    """A "task" is a job a head learns (topic, sentiment, a user's own): modules say what
    they do, never "Task 1".."Task 4"."""
    import re

    numbered = []
    for path in sorted([*ROOT.glob("mtl_keras/**/*.py"), *ROOT.glob("experiments/*.py"),
                        *ROOT.glob("benchmarks/*.py"), *ROOT.glob("*.md"),
                        *ROOT.glob("docs/*.md")]):  # fmt: skip
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bTask [1-4]\b", line):
                numbered.append(f"{path.relative_to(ROOT)}:{number}")
    assert not numbered, numbered
