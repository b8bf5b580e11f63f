"""An import-linter contract type the built-in ones cannot express: an allow-list.

``forbidden`` names what may not be imported; the pure domain's rule is the other way round
(DESIGN 1, STYLE 1): the standard library, pydantic and itself, nothing else, so a dependency
added to the project tomorrow is refused without anyone listing it. Registered in
``[tool.importlinter]`` as ``allowed_imports`` (``lint-imports`` puts the working directory on
``sys.path``, so run it from the repository root, as ``make lint`` does).

Like every import-linter contract it reads the import graph grimp builds from the source:
imports inside functions and ``if TYPE_CHECKING:`` blocks count; a dynamic import
(``importlib.import_module``) is invisible to it.
"""

import sys
from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


class AllowedImportsContract(Contract):
    """``source_modules`` (and their descendants) import only the standard library (unless
    ``allow_standard_library`` is false), ``allowed_modules`` and one another."""

    type_name = "allowed_imports"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    allowed_modules = fields.ListField(subfield=fields.ModuleField())
    allow_standard_library = fields.BooleanField(required=False, default=True)

    def _names(self, field: Any) -> list[str]:
        return [module.name for module in field]

    def _allowed(self, imported: str) -> bool:
        if self.allow_standard_library and imported.partition(".")[0] in sys.stdlib_module_names:
            return True
        return any(
            imported == name or imported.startswith(name + ".")
            for name in self._names(self.allowed_modules) + self._names(self.source_modules)
        )

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        importers: set[str] = set()
        for source in self._names(self.source_modules):
            importers |= {source, *graph.find_descendants(source)}
        refused = []
        for importer in sorted(importers):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if self._allowed(imported):
                    continue
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = sorted(d["line_number"] for d in details)
                refused.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(kept=not refused, metadata={"refused": refused})

    def render_broken_contract(self, check: ContractCheck) -> None:
        allowed = ", ".join(self._names(self.allowed_modules))
        output.print_error(f"Only the standard library, {allowed} and itself may be imported:")
        output.new_line()
        for found in check.metadata["refused"]:
            lines = ", ".join(f"l.{n}" for n in found["lines"])
            output.print_error(
                f"- {found['importer']} -> {found['imported']} ({lines})", bold=False
            )
        output.new_line()
