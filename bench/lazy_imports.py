"""The project's imports of its own modules (installation.*) per folder: at the top of a module, or inside a function.

    python bench/lazy_imports.py [ROOT] [-v]     # ROOT: a checkout (default: this one); -v lists every in-function one

An import inside a function hides a dependency from whoever reads the top of the module; the ones kept there say
why at the import (a cycle, the sender's or a command's start-up, an optional or heavy library). Imports in a class
body or under ``if TYPE_CHECKING`` count as top. Exits 0; it measures, it does not judge.
"""
from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path


def own(node) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name == "installation" or a.name.startswith("installation.") for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "installation"
    return False


def folder_of(rel: Path) -> str:
    if len(rel.parts) > 2:
        return str(rel.parent)
    return str(rel) if rel.name in ("cli.py", "engine.py") else "installation/(ground)"


def count(root: Path, verbose: bool = False) -> tuple[Counter, Counter]:
    top, lazy = Counter(), Counter()
    for path in sorted((root / "installation").rglob("*.py")):
        rel = path.relative_to(root)
        folder = folder_of(rel)

        def walk(node, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if own(child):
                    (lazy if in_function else top)[folder] += 1
                    if in_function and verbose:
                        print(f"{rel}:{child.lineno}: {ast.unparse(child)}")
                walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

        walk(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return top, lazy


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    top, lazy = count(Path(args[0]) if args else Path(__file__).resolve().parents[1], verbose)
    print(f"{'folder':32s} {'top':>5s} {'in-function':>12s}")
    for k in sorted(set(top) | set(lazy)):
        print(f"{k:32s} {top[k]:5d} {lazy[k]:12d}")
    print(f"{'total':32s} {sum(top.values()):5d} {sum(lazy.values()):12d}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
