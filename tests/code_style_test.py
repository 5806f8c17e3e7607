"""House rules that a reviewer would otherwise have to check by eye."""

import ast
from pathlib import Path

import pytest

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


MAX_TOP_LEVEL_MODULES = 12
MAX_MODULE_LINES = 450


def drawn_tree(markdown):
    """The module paths of the `mtl_keras/` tree drawn in docs/architecture.md."""
    paths, folder = set(), ""
    for line in markdown[markdown.index("mtl_keras/\n├") :].split("```")[0].splitlines()[1:]:
        name = line[line.index("── ") + 3 :].split()[0]
        depth = line.index("── ") // 4
        if name.endswith("/"):
            folder = name
        else:
            paths.add("mtl_keras/" + (folder if depth > 0 else "") + name)
    return paths


def test_the_package_shows_its_parts():
    """Sub-packages by concern (docs/architecture.md): few modules directly in `mtl_keras/`,
    none too long to read in one sitting."""
    top = sorted(p.name for p in (ROOT / "mtl_keras").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    long = [f"{p.relative_to(ROOT)} ({n})" for p in sorted(ROOT.glob("mtl_keras/**/*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]  # fmt: skip
    assert not long, long
    parts = {"encoding", "tasks", "model", "training", "evaluation", "export", "distributed"}
    missing = [
        part for part in sorted(parts) if not (ROOT / "mtl_keras" / part / "__init__.py").is_file()
    ]
    assert not missing, missing
    drawn = drawn_tree((ROOT / "docs" / "architecture.md").read_text())
    modules = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("mtl_keras/**/*.py")}
    modules -= {m for m in modules if m.count("/") > 1 and m.endswith("/__init__.py")}
    assert not modules - drawn, f"docs/architecture.md does not place {sorted(modules - drawn)}"
    assert not drawn - modules, (
        f"docs/architecture.md draws what is gone: {sorted(drawn - modules)}"
    )


KIND_NAMES = {"sentence", "token", "pair", "multi_label", "pair_classification", "contrastive"}
REGISTRY = "KINDS"  # the one place a kind's name is looked up: `KINDS[task.kind]`


def is_kind(node):
    """`x.kind` or a variable named `kind`."""
    return (isinstance(node, ast.Attribute) and node.attr == "kind") or (
        isinstance(node, ast.Name) and node.id == "kind"
    )


def is_kind_name(node):
    return isinstance(node, ast.Constant) and node.value in KIND_NAMES


def is_registry(node):
    return isinstance(node, ast.Name) and node.id == REGISTRY


def kind_switches(source):
    """Line numbers where code branches on a kind's name instead of asking its class:
    comparisons with a kind name or `x.kind`, `match` on a kind, lookups keyed by a kind
    in anything but the registry, and dicts keyed by kind names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            attribute = any(isinstance(s, ast.Attribute) and s.attr == "kind" for s in sides)
            named = any(is_kind_name(n) for side in sides for n in ast.walk(side))
            if named or (attribute and not any(map(is_registry, sides))):
                found.append(node.lineno)
        elif isinstance(node, ast.Match):
            patterns = [p for case in node.cases for p in ast.walk(case.pattern)]
            named = any(isinstance(p, ast.MatchValue) and is_kind_name(p.value) for p in patterns)
            if is_kind(node.subject) or named:
                found.append(node.lineno)
        elif isinstance(node, ast.Subscript) and is_kind(node.slice):
            if not is_registry(node.value):
                found.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            keyed = node.func.attr in ("get", "pop", "setdefault") and node.args
            if keyed and is_kind(node.args[0]) and not is_registry(node.func.value):
                found.append(node.lineno)
        elif isinstance(node, ast.Dict) and any(is_kind_name(k) for k in node.keys if k):
            found.append(node.lineno)
    return found


KIND_FILES = {
    f"mtl_keras/tasks/{name}.py" for name in ("kind", "classification", "token", "pairs", "kinds")
}


def test_no_task_kind_is_compared_outside_the_kind_classes():
    """What differs between kinds lives in the kind classes (`mtl_keras/tasks/`, registered in
    `kinds.py`); elsewhere code asks the task's kind (`task.spec`), so a new kind is one
    class, not a hunt for switches."""
    compared = []
    for path in sorted([*ROOT.glob("mtl_keras/**/*.py"), *ROOT.glob("experiments/*.py")]):
        if path.relative_to(ROOT).as_posix() in KIND_FILES:
            continue
        lines = kind_switches(path.read_text())
        compared += [f"{path.relative_to(ROOT)}:{line}" for line in lines]
    assert not compared, compared


@pytest.mark.parametrize(
    "code",
    [
        "if task.kind == 'token': pass",
        "if kind in ('pair', 'contrastive'): pass",
        "match task.kind:\n    case 'token': pass",
        "match name:\n    case 'multi_label': pass",
        "heads = HEADS[task.kind]",
        "head = HEADS.get(kind)",
        "loss = {'sentence': 1, 'token': 2}",
    ],
)
def test_the_kind_switch_check_catches_each_form(code):
    assert kind_switches(code) == [1]


def test_the_kind_switch_check_lets_the_registry_be():
    assert kind_switches("spec = KINDS[task.kind]\nok = kind in KINDS\nx = KINDS.get(kind)") == []


def timeoutless_subprocesses(source):
    """Line numbers of `subprocess.run`-style calls, and of `communicate()` / `wait()`,
    without a timeout: a hung child would hang the whole suite."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, owner = node.func.attr, node.func.value
        runs = name in ("run", "check_output", "check_call", "call") and (
            isinstance(owner, ast.Name) and owner.id == "subprocess"
        )
        waits = name in ("communicate", "wait") and not node.args
        if (runs or waits) and not any(k.arg == "timeout" for k in node.keywords):
            found.append(node.lineno)
    return found


def test_every_subprocess_a_test_waits_for_has_a_timeout():
    missing = []
    for path in sorted(ROOT.glob("tests/**/*.py")):
        missing += [
            f"{path.relative_to(ROOT)}:{n}" for n in timeoutless_subprocesses(path.read_text())
        ]
    assert not missing, missing
    assert timeoutless_subprocesses("subprocess.run(cmd)\np.communicate()") == [1, 2]


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
