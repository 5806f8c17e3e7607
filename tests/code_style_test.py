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
