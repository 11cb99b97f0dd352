"""An import-linter contract: no module imports another module's ``_private`` names.

``private_modules`` (import-linter's own contract) keeps private *modules* inside their package;
this one keeps private *names* inside their module. It reads every module of the root package with
:mod:`ast` and reports each ``from a.b import _name`` and each ``a.b._name`` attribute access on an
imported module, where ``a.b`` is another module of the package. Dunder names are public.
Importing a private *module* (``from dsl_explore import _validation`` or
``import dsl_explore._validation``) is left to ``private_modules``.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import grimp
from importlinter import Contract, ContractCheck, output


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _source(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def private_name_imports(module: str, modules: set[str]) -> list[tuple[int, str]]:
    """``(line, text)`` of each use of another package module's private name in ``module``."""
    path = _source(module)
    if path is None:
        return []
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[int, str]] = []
    aliases: dict[str, str] = {}  # local name -> package module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node)
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full in modules:  # a submodule, not a name
                    aliases[alias.asname or alias.name] = full
                elif source in modules and source != module and _is_private(alias.name):
                    found.append((node.lineno, f"from {source} import {alias.name}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            target = _dotted(node.value)
            if target is None:
                continue
            bound = aliases.get(target, target if target in modules else None)
            if bound is not None and bound != module and f"{bound}.{node.attr}" not in modules:
                found.append((node.lineno, f"{target}.{node.attr}"))
    return found


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


class PrivateNamesContract(Contract):
    """No module of the root package uses a ``_name`` defined in another of its modules."""

    type_name = "private_names"

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        modules = set(graph.modules)
        violations = {
            m: hits for m in sorted(modules) if (hits := private_name_imports(m, modules))
        }
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for module, hits in check.metadata["violations"].items():
            for line, text in hits:
                output.print_error(f"{module}:{line}: {text}", bold=False)
        output.new_line()
