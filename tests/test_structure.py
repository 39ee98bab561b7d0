"""The project's structure, checked from the source text (``ast``; nothing is imported
except Amaranth itself, to know its public names):

* no import cycle between modules of the project's packages (top-level and function-level
  imports, relative imports resolved);
* the layering: ``contract`` imports nothing of the project; ``hw`` and ``sim_models``
  import only ``contract``; ``flow`` (Verilog, lint, synthesis, area), ``verif`` (which
  builds its simulators from the flow's Verilog) and ``t3`` import only the layers below
  them (:data:`LAYERS`), so nothing imports ``t3``;
* no function or method in ``hw/`` longer than :data:`MAX_HW_FUNCTION_LINES` lines;
* no private Amaranth name used outside flow/amaranth_private.py (the one documented
  helper) and its own test.

(The paths in the docs, block table included, are tests/test_docs.py's.)

An import edge goes to the module named: ``from pkg import mod`` to ``pkg.mod`` when that
is a module, else to ``pkg``; ``import a.b.c`` to ``a.b.c`` (the parent packages'
``__init__`` run too, but they are not edges here). Imports under ``if TYPE_CHECKING:``
count like any other.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: the project's packages, bottom layer first
PACKAGES = ("contract", "hw", "sim_models", "flow", "verif", "t3")

#: package -> the project packages its modules may import (besides its own)
LAYERS: dict[str, frozenset[str]] = {
    "contract": frozenset(),
    "hw": frozenset({"contract"}),
    "sim_models": frozenset({"contract"}),
    "flow": frozenset({"contract", "hw", "sim_models"}),
    "verif": frozenset({"contract", "hw", "sim_models", "flow"}),
    "t3": frozenset({"contract", "hw", "sim_models", "verif", "flow"}),
}

MAX_HW_FUNCTION_LINES = 100

#: the one module allowed to use private Amaranth API, and its own test
PRIVATE_AMARANTH_HELPER = "flow/amaranth_private.py"
PRIVATE_AMARANTH_EXEMPT = (PRIVATE_AMARANTH_HELPER, "tests/test_amaranth_private.py")
#: where private Amaranth names are looked for: the packages, the tests, the scripts
PRIVATE_AMARANTH_SCOPE = PACKAGES + ("tests", "scripts")


# --------------------------------------------------------------------------------------
# The import graph
# --------------------------------------------------------------------------------------

def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


@lru_cache(maxsize=None)
def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package) for every module of :data:`PACKAGES`."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            name, is_pkg = _module_name(path)
            out[name] = (path, is_pkg)
    return out


def _project_module(dotted: str) -> str | None:
    """The longest prefix of ``dotted`` that is a module of the project."""
    mods = _modules()
    while dotted:
        if dotted in mods:
            return dotted
        dotted = dotted.rpartition(".")[0]
    return None


@lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@lru_cache(maxsize=None)
def _imports(module: str) -> tuple[tuple[str, int], ...]:
    """(imported project module, line) for every import statement of ``module``,
    wherever it is (top level, functions, classes)."""
    path, is_pkg = _modules()[module]
    package = module if is_pkg else module.rpartition(".")[0]
    found: set[tuple[str, int]] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _project_module(alias.name)
                if target:
                    found.add((target, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                target = sub if sub in _modules() else _project_module(source)
                if target:
                    found.add((target, node.lineno))
    return tuple(sorted((t, line) for t, line in found if t != module))


def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}."""
    graph: dict[str, dict[str, int]] = {}
    for mod in _modules():
        edges: dict[str, int] = {}
        for target, line in _imports(mod):
            edges.setdefault(target, line)
        graph[mod] = edges
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (a closed path, first module repeated at the end) per strongly
    connected component of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        components.append(sorted(comp))
    return [_cycle_in(graph, comp) for comp in sorted(components)]


def _cycle_in(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """The shortest closed path through the component's first module (BFS)."""
    members, start = set(component), component[0]
    parent: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    path = [v]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return path[::-1] + [start]
                if w in members and w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {component}")


def _describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    steps = [f"{a} ({_modules()[a][0].relative_to(ROOT)}:{graph[a][b]})"
             for a, b in zip(cycle, cycle[1:])]
    return " -> ".join(steps + [cycle[-1]])


def test_cycle_finder_names_a_cycle():
    """The finder itself, on a made-up graph."""
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1, "d": 1}, "d": {}, "e": {"e": 1}}
    assert _cycles({k: {w: n for w, n in v.items() if w != k} for k, v in graph.items()}) \
        == [["a", "b", "c", "a"]]


def test_import_resolution():
    """Relative and function-level imports are edges (spot checks on real modules)."""
    assert "flow.amaranth_private" in dict(_imports("flow.verilog"))     # `from .x import`
    assert "flow.verilog" in dict(_imports("flow.area"))                 # inside a function
    assert "contract.spec" in dict(_imports("contract.latency"))         # `from .spec import`


def test_no_import_cycle():
    graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "import cycles between modules:\n" + "\n".join(
        "  " + _describe(graph, c) for c in cycles)


# --------------------------------------------------------------------------------------
# Layering
# --------------------------------------------------------------------------------------

def _top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("package", PACKAGES)
def test_layering(package):
    allowed = LAYERS[package] | {package}
    bad = [f"{mod} ({_modules()[mod][0].relative_to(ROOT)}:{line}) imports {target}"
           for mod in _modules() if _top(mod) == package
           for target, line in _imports(mod) if _top(target) not in allowed]
    assert not bad, (f"{package} may import only {sorted(LAYERS[package]) or 'nothing'} of "
                     "the project:\n  " + "\n  ".join(bad))


def test_layers_are_ordered():
    """Each layer may import only earlier ones (so the rule itself has no cycle)."""
    for i, pkg in enumerate(PACKAGES):
        assert LAYERS[pkg] <= set(PACKAGES[:i]), pkg


def test_nothing_that_t3_imports_imports_t3():
    """The command line is the top: no module it reaches (directly or not) outside t3
    imports t3 (in particular flow does not)."""
    graph = _graph()
    reached, todo = set(), [m for m in graph if _top(m) == "t3"]
    while todo:
        for w in graph[todo.pop()]:
            if w not in reached:
                reached.add(w)
                todo.append(w)
    bad = [f"{m} imports {t}" for m in sorted(reached) if _top(m) != "t3"
           for t in graph[m] if _top(t) == "t3"]
    assert not bad, "modules that t3 imports import t3 in turn:\n  " + "\n  ".join(bad)


# --------------------------------------------------------------------------------------
# Function length in hw/
# --------------------------------------------------------------------------------------

def _functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{node.name}", node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def test_hw_functions_are_short():
    long = []
    for path in sorted((ROOT / "hw").rglob("*.py")):
        for name, node in _functions(_tree(path)):
            length = node.end_lineno - node.lineno
            if length > MAX_HW_FUNCTION_LINES:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}: {length} lines")
    assert not long, (f"functions in hw/ longer than {MAX_HW_FUNCTION_LINES} lines "
                      "(end_lineno - lineno):\n  " + "\n  ".join(long))


# --------------------------------------------------------------------------------------
# Private Amaranth API
# --------------------------------------------------------------------------------------

#: Amaranth's "never used" switch (spelt in two pieces so that this file does not use it)
SILENCE = "_MustUse" + "__silence"

#: public names that Amaranth documents but leaves out of the module's ``__all__``
#: (Amaranth 0.5 reference: docs/stdlib/wiring.rst)
DOCUMENTED_OUTSIDE_ALL: dict[str, frozenset[str]] = {
    "amaranth.lib.wiring": frozenset({
        "Flow", "Member", "SignatureError", "SignatureMembers", "FlippedSignatureMembers",
        "FlippedSignature", "SignatureMeta", "FlippedInterface", "ConnectionError"}),
}

#: a name-mangled private attribute, ``_Class__attr``
_MANGLED_RE = re.compile(r"_([A-Za-z][A-Za-z0-9]*)__[A-Za-z]\w*")


@lru_cache(maxsize=None)
def _amaranth_classes() -> frozenset[str]:
    """Names of every class defined in Amaranth's source (for ``_Class__attr``)."""
    origin = Path(importlib.util.find_spec("amaranth").origin).parent
    names = set()
    for path in origin.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ClassDef):
                names.add(node.name)
    return frozenset(names)


def _is_module(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except (ImportError, ValueError):
        return False


@lru_cache(maxsize=None)
def _public_names(module: str) -> frozenset[str] | None:
    """The public names of an Amaranth module: ``__all__`` (plus
    :data:`DOCUMENTED_OUTSIDE_ALL`), else every name without a leading underscore (None:
    the module does not import)."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    return frozenset(names) | DOCUMENTED_OUTSIDE_ALL.get(module, frozenset())


def _private_module(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def _private_member(module: str, name: str) -> bool:
    """``module.name`` is private: an underscored name, or not in ``__all__`` (a
    submodule is judged by its own name)."""
    if name.startswith("_"):
        return not (name.startswith("__") and name.endswith("__"))
    if _is_module(f"{module}.{name}"):
        return False
    public = _public_names(module)
    return public is not None and name not in public


def _locally_bound(func: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _private_uses(path: Path) -> list[str]:
    tree = _tree(path)
    uses: list[str] = []
    aliases: dict[str, str] = {}       # local name -> amaranth module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "amaranth" or a.name.startswith("amaranth."):
                    if _private_module(a.name):
                        uses.append(f"{node.lineno}: import {a.name}")
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases["amaranth"] = "amaranth"
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module and (
                node.module == "amaranth" or node.module.startswith("amaranth.")):
            if _private_module(node.module):
                uses.append(f"{node.lineno}: from {node.module} import ...")
                continue
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if _is_module(full):
                    aliases[a.asname or a.name] = full
                elif a.name != "*" and _private_member(node.module, a.name):
                    uses.append(f"{node.lineno}: from {node.module} import {a.name}")
    # attribute chains on a name bound to an Amaranth module (not rebound in a function)
    shadowed: dict[int, set[str]] = {}
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            bound = _locally_bound(func)
            for inner in ast.walk(func):
                shadowed.setdefault(id(inner), set()).update(bound)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(node.value, ast.Attribute):
            continue
        if isinstance(node, ast.Attribute):
            chain, base = [], node
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if not isinstance(base, ast.Name) or base.id not in aliases \
                    or base.id in shadowed.get(id(base), ()):
                continue
            module = aliases[base.id]
            for attr in reversed(chain):
                if _private_member(module, attr):
                    uses.append(f"{node.lineno}: {module}.{attr}")
                    break
                if not _is_module(f"{module}.{attr}"):
                    break
                module = f"{module}.{attr}"
    # name-mangled private attributes of Amaranth classes (``_MustUse__silence``), as an
    # attribute or as a string (``obj.__dict__["_MustUse__silence"]``)
    for node in ast.walk(tree):
        text = node.attr if isinstance(node, ast.Attribute) else \
            node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
        if text:
            for m in _MANGLED_RE.finditer(text):
                if m.group(1) in _amaranth_classes():
                    uses.append(f"{node.lineno}: {m.group(0)}")
    return sorted(set(uses), key=lambda u: int(u.split(":")[0]))


def test_private_amaranth_finder(tmp_path):
    """The finder on made-up source: each private use found, the public ones not."""
    src = ("from amaranth.back import rtlil, verilog\n"
           "from amaranth.hdl._ir import Fragment\n"
           "from amaranth.hdl import Module, UnusedElaboratable\n"
           "import amaranth.back.rtlil as r\n"
           "x = rtlil.ModuleEmitter.emit_memory\n"
           "y = r.convert; z = verilog.convert; w = rtlil.convert\n"
           f"c.{SILENCE} = True\n"
           f"c.__dict__['{SILENCE}'] = True\n"
           "from amaranth.lib.wiring import Flow, Member\n"
           "def f(rtlil):\n    return rtlil.anything\n")
    path = tmp_path / "probe.py"
    path.write_text(src)
    found = _private_uses(path)
    assert found == ["2: from amaranth.hdl._ir import ...",
                     "5: amaranth.back.rtlil.ModuleEmitter", f"7: {SILENCE}",
                     f"8: {SILENCE}"], found


def test_private_amaranth_only_in_the_helper():
    bad = []
    for top in PRIVATE_AMARANTH_SCOPE:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in PRIVATE_AMARANTH_EXEMPT:
                continue
            bad += [f"{rel}:{use}" for use in _private_uses(path)]
    assert not bad, (f"private Amaranth API outside {PRIVATE_AMARANTH_HELPER} (put it there, "
                     "documented; to build a component only for its properties, filter "
                     f"amaranth.hdl.UnusedElaboratable instead of setting {SILENCE}):\n  "
                     + "\n  ".join(bad))


def test_the_helper_is_where_the_private_api_is():
    """The exemption is not empty: the helper does use the private symbol it documents."""
    uses = _private_uses(ROOT / PRIVATE_AMARANTH_HELPER)
    assert any("amaranth.back.rtlil.ModuleEmitter" in u for u in uses), uses
