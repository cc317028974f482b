"""Import-linter contract types of this project (registered in pyproject.toml, run by `make lint`).

`private_names`: modules talk through public names. No module takes another module's `_private`
name, neither by `from module import _name` nor by `module._name` on a module it imported. The
module that defines the name, and nothing else, may use it. Ruff's PLC2701 covers imports from
other top-level packages only; this contract covers every first-party module, tests and benchmarks
included.

Only this project's modules are checked as the imported side (third-party ones are ruff's). The
files are read as source (`ast`), so a name used only inside a function is seen too.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    importer: str
    imported: str
    name: str


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute name of `from <dots><module> import ...` written in `importer`."""
    if not level:
        return module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _is_module(dotted: str, root: Path) -> bool:
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations_in(path: Path, root: Path, first_party: frozenset[str]) -> list[Violation]:
    """The private names of other first-party modules that the file at `path` takes."""
    importer = _module_name(path, root)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def ours(module: str) -> bool:
        return module.split(".")[0] in first_party

    found: list[Violation] = []
    modules: dict[str, str] = {}  # a local name bound to one of our modules -> that module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node.module, node.level, importer, is_package)
            if not ours(source):
                continue
            for alias in node.names:
                if _is_private(alias.name) and source != importer:
                    found.append(Violation(str(path), node.lineno, importer, source, alias.name))
                # `from package import module`: the name may be a module, used as `module._name`.
                modules[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if ours(alias.name):
                    if alias.asname:
                        modules[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        modules.setdefault(top, top)

    def take(node: ast.AST, module: str | None, name: str) -> None:
        if module is not None and module != importer and _is_private(name) and _is_module(module, root):
            found.append(Violation(str(path), getattr(node, "lineno", 0), importer, module, name))

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            take(node, _dotted(node.value, modules), node.attr)
        elif isinstance(node, ast.Call) and node.args:
            # Patching by name: monkeypatch.setattr(module, "_name", ...), getattr(module, "_name"),
            # monkeypatch.setattr("package.module._name", ...), mock.patch("package.module._name").
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and ours(first.value):
                module, _dot, name = first.value.rpartition(".")
                take(node, module, name)
            elif len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                take(node, _dotted(first, modules), node.args[1].value)
    return found


def _dotted(node: ast.expr, modules: dict[str, str]) -> str | None:
    """`a.b.c` as the module it names, when it starts with a name bound to one of our modules."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in modules:
        return None
    return ".".join([modules[node.id], *reversed(parts)])


class PrivateNamesContract(Contract):
    """Modules talk through public names: no `from m import _x`, no `m._x`, for any of our modules m.

    Options:
        - source_paths: the folders whose files are checked (relative to the working directory).
        - first_party: the top-level packages whose private names are protected.
    """

    type_name = "private_names"

    source_paths = fields.ListField(subfield=fields.StringField())
    first_party = fields.ListField(subfield=fields.StringField())

    def check(self, graph: object, verbose: bool) -> ContractCheck:
        root = Path.cwd()
        first_party = frozenset(self.first_party)
        found: list[Violation] = []
        for folder in self.source_paths:
            for path in sorted((root / folder).rglob("*.py")):
                if "migrations" in path.parts or ".venv" in path.parts:
                    continue
                found.extend(violations_in(path, root, first_party))
        return ContractCheck(kept=not found, metadata={"violations": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for v in check.metadata["violations"]:
            output.print_error(f"{v.importer} takes {v.imported}.{v.name} (private)", bold=True)
            output.indent_cursor()
            output.print_error(f"{v.path}:{v.line}")
            output.new_line()
