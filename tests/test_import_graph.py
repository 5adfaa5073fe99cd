"""No import cycle in the package: the graph of who imports whom, read from the source (ast).

The modules are those of ``multimodal_har/`` plus ``extractors/`` and ``fusion/``, which install
as ``multimodal_har.extractors`` / ``multimodal_har.fusion``. An edge ``a -> b`` is an import
statement in ``a`` naming ``b`` (``from .x import y`` names ``x``, or ``x.y`` when that is a
module), wherever the statement stands:

* **module level** (``graph(lazy=False)``): these run when ``a`` is imported, so a cycle among
  them can leave a half-initialised module behind (an ``ImportError`` or ``AttributeError``
  depending on which module is imported first);
* **inside functions** too (``graph(lazy=True)``): a deferred import cannot fail that way, but a
  cycle through one still means two modules that need each other (``train`` and ``evaluate``
  once did), which is what this test forbids: the engine layer (:mod:`multimodal_har.engine`)
  holds what both sides need. Imports under ``if TYPE_CHECKING:`` are left out (they never run).

Importing a submodule also imports its parent packages; those implicit edges are not counted
(every ``multimodal_har.x`` would otherwise form a cycle with ``multimodal_har/__init__.py``
as soon as the package re-exports anything).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"multimodal_har": ROOT / "multimodal_har", "multimodal_har.extractors": ROOT / "extractors",
           "multimodal_har.fusion": ROOT / "fusion"}


def modules() -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of the package (installed names)."""
    out = {}
    for prefix, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if prefix == "multimodal_har" and parts and parts[0] in ("extractors", "fusion"):
                continue  # (not there: the mapped folders live at the top)
            out[".".join([prefix, *parts])] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def imports_of(name: str, path: Path, known: set[str], *, lazy: bool) -> set[str]:
    """The package modules that ``name`` (file ``path``) imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skip = _type_checking_nodes(tree)
    top_level = {id(n) for n in tree.body} | {id(n) for stmt in tree.body if isinstance(stmt, (ast.If, ast.Try))
                                               for n in ast.walk(stmt)}
    out = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in skip:
            continue
        if not lazy and id(node) not in top_level:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for t in targets:
            while t and t not in known:  # `import a.b.c` of a non-module attribute: its module
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph(*, lazy: bool) -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known, lazy=lazy) for name, path in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    import sys

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def _explain(g: dict[str, set[str]], comp: list[str]) -> str:
    members = set(comp)
    return "; ".join(f"{a} -> {', '.join(sorted(g[a] & members))}" for a in comp)


def test_the_graph_is_read():
    g = graph(lazy=True)
    assert {"multimodal_har.engine", "multimodal_har.fusion.concat", "multimodal_har.extractors.rgb"} <= set(g)
    assert "multimodal_har.engine" in g["multimodal_har.train"]
    assert "multimodal_har.engine" in g["multimodal_har.evaluate"]
    assert "multimodal_har.fusion" in g["multimodal_har.model"]  # an absolute import of a mapped folder


def test_no_cycle_among_module_level_imports():
    g = graph(lazy=False)
    found = cycles(g)
    assert not found, "import cycles: " + " | ".join(_explain(g, c) for c in found)


def test_no_cycle_even_through_imports_inside_functions():
    g = graph(lazy=True)
    found = cycles(g)
    assert not found, "import cycles: " + " | ".join(_explain(g, c) for c in found)


def test_train_and_evaluate_do_not_import_each_other():
    g = graph(lazy=True)
    assert "multimodal_har.evaluate" not in g["multimodal_har.train"]
    assert "multimodal_har.train" not in g["multimodal_har.evaluate"]


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
