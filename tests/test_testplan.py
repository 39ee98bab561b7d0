"""The machine-readable test plan (docs/testplan.toml) against the repository: every
named test exists, every functional coverage point of verif/coverage.py belongs to a
testpoint, every testpoint names a test, every test file belongs to a testpoint, and the
testpoints are those of docs/testplan.md."""

import ast
import fnmatch
import re
import tomllib
from functools import cache
from pathlib import Path

import pytest

from verif.coverage import POINTS

REPO = Path(__file__).resolve().parent.parent
PLAN = tomllib.loads((REPO / "docs" / "testplan.toml").read_text())["testpoint"]
NAMES = [tp["name"] for tp in PLAN]


@cache
def _functions(path: Path) -> frozenset[str]:
    """Top-level (async) functions of a Python file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return frozenset(n.name for n in tree.body
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))


@cache
def _make_targets() -> frozenset[str]:
    text = (REPO / "Makefile").read_text()
    return frozenset(re.findall(r"^([A-Za-z][\w-]*):(?!=)", text, flags=re.M))


def missing_test(entry: str) -> str | None:
    """Why ``entry`` (``make T``, ``file`` or ``file::function[params]``) names nothing,
    or None when it exists."""
    if entry.startswith("make "):
        target = entry[len("make "):]
        return None if target in _make_targets() else f"no Makefile target {target!r}"
    path, _, func = entry.partition("::")
    f = REPO / path
    if not f.is_file():
        return f"no file {path}"
    if not func:
        return None
    name = func.split("[", 1)[0]
    return None if name in _functions(f) else f"{path} defines no function {name!r}"


def test_testpoints_are_named_once_and_each_names_a_test():
    assert len(PLAN) >= 50
    dup = sorted({n for n in NAMES if NAMES.count(n) > 1})
    assert not dup, f"testpoints named twice: {dup}"
    for tp in PLAN:
        assert set(tp) <= {"name", "tests", "coverage"}, tp
        assert tp.get("tests"), f"testpoint {tp['name']} names no test"


@pytest.mark.parametrize("name", NAMES)
def test_every_named_test_exists(name):
    tp = PLAN[NAMES.index(name)]
    bad = {t: why for t in tp["tests"] if (why := missing_test(t))}
    assert not bad, f"testpoint {name}: {bad}"


def test_every_coverage_point_belongs_to_a_testpoint():
    patterns = [(tp["name"], p) for tp in PLAN for p in tp.get("coverage", [])]
    empty = [(n, p) for n, p in patterns if not fnmatch.filter(POINTS, p)]
    assert not empty, f"coverage entries matching no point of verif.coverage.POINTS: {empty}"
    homeless = sorted(pt for pt in POINTS if not any(fnmatch.fnmatchcase(pt, p)
                                                     for _, p in patterns))
    assert not homeless, f"coverage points in no testpoint: {homeless}"


def test_every_test_file_belongs_to_a_testpoint():
    named = {t.split("::")[0] for tp in PLAN for t in tp["tests"]}
    files = sorted(str(f.relative_to(REPO)) for d in ("tests", "verif")
                   for f in (REPO / d).glob("test_*.py"))
    assert files
    assert not set(files) - named, f"test files in no testpoint: {sorted(set(files) - named)}"


def test_testpoints_are_those_of_the_document():
    doc = (REPO / "docs" / "testplan.md").read_text()
    doc = doc.split("## Functional coverage points")[0]
    rows = re.findall(r"^\| ([\w.]+) \|", doc, flags=re.M)
    in_doc = [r for r in rows if r != "Testpoint"]
    assert sorted(in_doc) == sorted(NAMES), (
        f"only in docs/testplan.md: {sorted(set(in_doc) - set(NAMES))}; "
        f"only in docs/testplan.toml: {sorted(set(NAMES) - set(in_doc))}")


@pytest.mark.parametrize("entry, why", [
    ("make no_such_target", "no Makefile target 'no_such_target'"),
    ("tests/no_such_file.py::test_x", "no file tests/no_such_file.py"),
    ("tests/test_testplan.py::test_no_such_function[p]",
     "tests/test_testplan.py defines no function 'test_no_such_function'"),
])
def test_the_existence_check_can_fail(entry, why):
    assert missing_test(entry) == why
    assert missing_test("tests/test_testplan.py::test_the_existence_check_can_fail[x]") is None
