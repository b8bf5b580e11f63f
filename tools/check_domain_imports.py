"""Fail when the pure domain imports anything but the standard library, pydantic or itself.

    python tools/check_domain_imports.py [DOMAIN_DIR]

Every module under ``libs/escrow_core/domain`` (or DOMAIN_DIR) is parsed with ``ast``, never
imported, so a forbidden import is caught even in a branch that never runs (``if
TYPE_CHECKING:``, a function body). Allowed: ``sys.stdlib_module_names``, ``pydantic`` and its
submodules, and ``escrow_core.domain`` itself. Not allowed, on purpose: pydantic's own
dependencies (``pydantic_core``, ``annotated_types``, ``typing_extensions``), the rest of
``escrow_core``, and dynamic imports (``importlib.import_module``, ``__import__``), which no
static check could vouch for. Exit status 1 lists the offenders as ``path:line: reason``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_DIR = ROOT / "libs" / "escrow_core" / "domain"
DOMAIN_PACKAGE = "escrow_core.domain"
THIRD_PARTY_ALLOWED = frozenset({"pydantic"})
DYNAMIC_IMPORTERS = frozenset({"__import__", "import_module"})


@dataclass(frozen=True, order=True)
class Offender:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def is_allowed(module: str, package: str = DOMAIN_PACKAGE) -> bool:
    """Whether the absolute module name ``module`` may be imported by the domain."""
    top = module.partition(".")[0]
    if top in sys.stdlib_module_names or top in THIRD_PARTY_ALLOWED:
        return True
    return module == package or module.startswith(package + ".")


def module_name(path: Path, domain_dir: Path, package: str = DOMAIN_PACKAGE) -> str:
    """The dotted name of the module at ``path`` (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(domain_dir).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def resolve_relative(importer: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name ``from <level dots><target> import ...`` refers to in ``importer``."""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    if level - 1 > len(base):
        return "." * level + (target or "")  # beyond the top package: never allowed
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imported_modules(tree: ast.AST, importer: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every (line, absolute module) the source imports, statically or dynamically."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, node.module or ""
            else:
                yield node.lineno, resolve_relative(importer, is_package, node.level, node.module)
        elif isinstance(node, ast.Call) and _called_name(node.func) in DYNAMIC_IMPORTERS:
            yield node.lineno, f"<dynamic import via {_called_name(node.func)}()>"


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def find_offenders(domain_dir: Path = DOMAIN_DIR, package: str = DOMAIN_PACKAGE) -> list[Offender]:
    """Every import in ``domain_dir`` that the pure domain must not make."""
    offenders = []
    for path in sorted(domain_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        importer = module_name(path, domain_dir, package)
        is_package = path.name == "__init__.py"
        for line, module in imported_modules(tree, importer, is_package):
            if not is_allowed(module, package):
                offenders.append(Offender(path, line, f"imports {module}"))
    return offenders


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    domain_dir = Path(args[0]) if args else DOMAIN_DIR
    if not domain_dir.is_dir():
        print(f"no such directory: {domain_dir}", file=sys.stderr)
        return 2
    offenders = find_offenders(domain_dir)
    if offenders:
        print("the domain may import only the standard library, pydantic and itself:")
        for offender in offenders:
            print(f"  {offender}")
        return 1
    count = sum(1 for _ in domain_dir.rglob("*.py"))
    print(f"ok: {count} domain modules import only the standard library, pydantic and itself")
    return 0


if __name__ == "__main__":
    sys.exit(main())
