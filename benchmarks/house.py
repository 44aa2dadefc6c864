"""The house's shape, measured: import circles, arrows pointing up a floor, imports hidden in functions,
long modules and long functions (issue 20's numbers).

Floors, ground up: db < curate < train < label_app. An import may point down or sideways within its own
package, never up; no two modules may import each other, directly or around a circle; an import of a
project module inside a function is kept for optional dependencies only.

    python benchmarks/house.py            # the numbers and every offender
    python benchmarks/house.py --json

tests/test_house.py runs the same check with the limits, so the house cannot slide back.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

FLOORS = ("db", "curate", "train", "label_app")
ROOT = Path(__file__).resolve().parent.parent

# The limits issue 20 set.
MAX_HIDDEN_IMPORTS = 10
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 100


@dataclass
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported project module, dotted
    line: int
    hidden: bool  # inside a function


@dataclass
class House:
    imports: list[Import] = field(default_factory=list)
    module_lines: dict[str, int] = field(default_factory=dict)
    function_lines: list[tuple[str, str, int]] = field(default_factory=list)  # module, function, lines


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    # a package's __init__ is its own anchor; a module's anchor is its package
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def _project_target(name: str, modules: set[str]) -> str | None:
    """The longest project module that `name` names (a.b.c -> a.b when c is a function)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


class _Walker(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, modules: set[str], house: House):
        self.module, self.is_package, self.modules, self.house = module, is_package, modules, house
        self.depth = 0

    def visit_FunctionDef(self, node):
        self.house.function_lines.append((self.module, node.name, node.end_lineno - node.lineno + 1))
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def _add(self, name: str, line: int):
        target = _project_target(name, self.modules)
        if target and target != self.module:
            found = Import(self.module, target, line, self.depth > 0)
            if found not in self.house.imports:  # `from m import a, b` is one import of m
                self.house.imports.append(found)

    def visit_Import(self, node):
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node):
        base = _resolve(node, self.module, self.is_package)
        for alias in node.names:
            # `from pkg import mod` imports a module; `from mod import name` imports the module
            full = f"{base}.{alias.name}"
            self._add(full if full in self.modules else base, node.lineno)


def survey(root: Path = ROOT) -> House:
    house = House()
    files = [p for floor in FLOORS for p in sorted((root / floor).rglob("*.py"))]
    modules = {module_name(p, root) for p in files}
    for path in files:
        text = path.read_text(encoding="utf-8")
        name = module_name(path, root)
        house.module_lines[name] = len(text.splitlines())
        _Walker(name, path.name == "__init__.py", modules, house).visit(ast.parse(text, str(path)))
    return house


def floor_of(module: str) -> int:
    return FLOORS.index(module.split(".")[0])


def upward(house: House) -> list[Import]:
    return [i for i in house.imports if floor_of(i.target) > floor_of(i.source)]


def _is_ancestor(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def circles(house: House) -> list[list[str]]:
    """Strongly connected groups of modules (Tarjan), each a circle of imports. A package's
    __init__ importing its own submodules (and them importing each other through it) is how a
    package shows its public names, so edges between a package and its own modules are left out."""
    graph: dict[str, set[str]] = {}
    for i in house.imports:
        if _is_ancestor(i.target, i.source) or _is_ancestor(i.source, i.target):
            continue
        graph.setdefault(i.source, set()).add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str):
        # iterative Tarjan: the import graph is deep enough to make recursion a worry
        work = [(node, iter(sorted(graph.get(node, ()))))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == current:
                        break
                if len(group) > 1:
                    found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def hidden(house: House) -> list[Import]:
    return [i for i in house.imports if i.hidden]


def long_modules(house: House, limit: int = MAX_MODULE_LINES) -> list[tuple[str, int]]:
    return sorted(((m, n) for m, n in house.module_lines.items() if n > limit), key=lambda x: -x[1])


def long_functions(house: House, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, str, int]]:
    return sorted((f for f in house.function_lines if f[2] > limit), key=lambda f: -f[2])


def report(house: House) -> dict:
    return {
        "modules": len(house.module_lines),
        "lines": sum(house.module_lines.values()),
        "circles": circles(house),
        "upward": [f"{i.source}:{i.line} -> {i.target}" for i in upward(house)],
        "hidden": [f"{i.source}:{i.line} -> {i.target}" for i in hidden(house)],
        "long_modules": [f"{m} {n}" for m, n in long_modules(house)],
        "long_functions": [f"{m}.{f} {n}" for m, f, n in long_functions(house)],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = report(survey())
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{figures['modules']} modules, {figures['lines']} lines")
    for key, limit in (("circles", 0), ("upward", 0), ("hidden", MAX_HIDDEN_IMPORTS),
                       ("long_modules", 0), ("long_functions", 0)):
        rows = figures[key]
        print(f"{key}: {len(rows)} (at most {limit})")
        for row in rows:
            print(f"  {' <-> '.join(row) if isinstance(row, list) else row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
