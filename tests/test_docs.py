"""The docs point at files that exist: docs/architecture.md's block table (every path,
and a row for every hardware component under hw/), and every path or module named in
README.md and the flow's docs (area, report, simulation, testplan, architecture)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
BLOCK_TABLE_HEADING = "## Where each block lives"
BLOCK_COLUMNS = ["block", "RTL", "model", "unit tests", "cocotb tests", "doc"]

#: the blocks the table must have (issue #13), by the start of their name
REQUIRED_BLOCKS = ("FloatAdder", "near-memory ALU / compute memory", "address map", "tracker",
                   "DMA engine", "CSR block", "arbiter (MCA)", "stream merge",
                   "track & trigger", "T3 unit", "link model", "read generator", "ring top",
                   "producer / trace", "golden ring", "NMC model", "system model")

#: docs whose paths and module names are checked (the ones the flow's owners keep)
CHECKED_DOCS = ("README.md", "docs/architecture.md", "docs/area.md", "docs/report.md",
                "docs/simulation.md", "docs/testplan.md")

TOPS = ("contract", "hw", "sim_models", "verif", "flow", "t3", "tests", "scripts", "docs")
_PATH_RE = re.compile(r"^(?:%s)/[\w./*-]*$" % "|".join(TOPS))
_MODULE_RE = re.compile(r"^(?:contract|hw|sim_models|verif|flow|t3)(?:\.\w+)+$")


def block_table(text: str) -> list[dict[str, str]]:
    """The rows of the block table (column name -> cell text)."""
    section = text.split(BLOCK_TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == BLOCK_COLUMNS, header
    assert set(lines[1].replace("|", "").strip()) <= set("-: "), lines[1]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")))) for ln in lines[2:]]


def _code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _exists(path: str) -> bool:
    path = path.split("::")[0].split(":")[0]
    return any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()


def test_block_table_has_every_block_and_every_path_exists():
    rows = block_table(ARCHITECTURE.read_text())
    names = [r["block"] for r in rows]
    missing = [b for b in REQUIRED_BLOCKS if not any(n.startswith(b) for n in names)]
    assert not missing, f"blocks without a row: {missing}"
    bad = []
    for r in rows:
        for col in BLOCK_COLUMNS[1:]:
            spans = _code_spans(r[col])
            if not spans and not r[col].startswith("—"):
                bad.append(f"{r['block']}: {col}: neither paths nor '—': {r[col]!r}")
            bad += [f"{r['block']}: {col}: {p} does not exist" for p in spans if not _exists(p)]
        if not _code_spans(r["unit tests"]) and not _code_spans(r["cocotb tests"]):
            bad.append(f"{r['block']}: no tests")
        if not _code_spans(r["doc"]):
            bad.append(f"{r['block']}: no doc")
    assert not bad, "docs/architecture.md block table:\n  " + "\n  ".join(bad)


def _component_files() -> set[str]:
    """hw/ files that define an Amaranth component (a class deriving from a
    ``*Component``)."""
    out = set()
    for path in (ROOT / "hw").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    (b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "")
                     ).endswith("Component") for b in node.bases):
                out.add(path.relative_to(ROOT).as_posix())
    return out - {"hw/component.py"}          # the base class itself


def test_every_hw_component_has_a_row():
    rows = block_table(ARCHITECTURE.read_text())
    listed = {p for r in rows for p in _code_spans(r["RTL"])}
    missing = sorted(_component_files() - listed)
    assert not missing, f"hardware without a row in docs/architecture.md's block table: {missing}"


# --------------------------------------------------------------------------------------
# Paths and module names in the docs
# --------------------------------------------------------------------------------------

def _module_target(dotted: str) -> tuple[Path | None, list[str]]:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:i])
        for cand in (base.with_suffix(".py"), base / "__init__.py"):
            if cand.exists():
                return cand, parts[i:]
    return None, parts


def _top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def stale_references(text: str) -> list[str]:
    """Paths (``dir/file``) and modules (``pkg.mod[.name]``) named in code spans that do
    not exist (a module's first attribute must be a top-level name of the module)."""
    bad = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for span in re.findall(r"`([^`]+)`", line):
            for tok in re.split(r"[\s,()\[\]]+", span):
                tok = tok.strip(".;")
                if not tok or "<" in tok or "{" in tok:
                    continue
                if _PATH_RE.match(tok):
                    if not _exists(tok):
                        bad.append(f"{lineno}: {tok}")
                elif _MODULE_RE.match(tok):
                    path, rest = _module_target(tok)
                    if path is None or (rest and rest[0] not in _top_level_names(path)):
                        bad.append(f"{lineno}: {tok}")
    return bad


@pytest.mark.parametrize("doc", CHECKED_DOCS)
def test_doc_references_exist(doc):
    bad = stale_references((ROOT / doc).read_text())
    assert not bad, f"{doc}: stale paths or modules:\n  " + "\n  ".join(bad)


def test_stale_reference_finder():
    text = "`flow/area.py`, `t3/area.py` and `flow.area.collect`, `flow.area.nothing`, `hw.verilog`"
    assert stale_references(text) == ["1: t3/area.py", "1: flow.area.nothing", "1: hw.verilog"]
