"""The import graph of installation/ by layer: every import that climbs to a higher layer, and every cycle.

    python bench/import_layers.py [ROOT]        # ROOT: a checkout (default: this one)

Every import counts, at the top of a module or inside a function (a lazy import is still a dependency).
The layers, from the ground up:

    0  the shared basics (installation/*.py but engine.py and cli.py) and mood/
    1  midi/        2  image/        3  music/, measures/        4  patches/, training/
    5  evaluation/, engine.py        6  kiosk/        7  collection/        8  cli.py

An edge is one (importing module, imported module) pair; a cycle is a strongly connected set of modules.
Exits 0; it measures, it does not judge.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

LAYERS = {"mood": 0, "midi": 1, "image": 2, "music": 3, "measures": 3, "patches": 4, "training": 4, "evaluation": 5,
          "engine": 5, "kiosk": 6, "collection": 7, "cli": 8}


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted((root / "installation").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def imports(path: Path, known: dict) -> set[str]:
    """The project modules ``path`` imports anywhere in it (``from a.b import c``: a.b.c when that is a module)."""
    return set(import_lines(path, known))


def import_lines(path: Path, known: dict) -> dict[str, list[int]]:
    """The project modules ``path`` imports, each with the lines of the import statements that name it."""
    found: dict[str, list[int]] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:          # import a.b.c of a package: its nearest module
                name = name.rpartition(".")[0]
            if name.startswith("installation"):
                found.setdefault(name, []).append(node.lineno)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected sets of two or more modules (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def measure(root: Path) -> tuple[dict[str, Path], list[tuple[str, str]], list[list[str]]]:
    """The modules, the upward imports (importer, imported) and the cycles of the checkout at ``root``."""
    known = modules(root)
    graph = {m: {d for d in imports(p, known) if d != m and not m.startswith(d + ".")} for m, p in known.items()}
    up = sorted((m, d) for m, deps in graph.items() for d in deps if layer(d) > layer(m))
    return known, up, cycles(graph)


def main(argv=None) -> int:
    root = Path((argv or sys.argv[1:] or [Path(__file__).resolve().parents[1]])[0])
    _, up, found = measure(root)
    print(f"{len(up)} upward imports (importer -> imported, layers):")
    for m, d in up:
        print(f"  {m} ({layer(m)}) -> {d} ({layer(d)})")
    print(f"{len(found)} import cycles:")
    for comp in found:
        print("  " + " <-> ".join(comp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
