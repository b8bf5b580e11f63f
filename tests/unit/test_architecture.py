"""The layers hold (DESIGN 1 and 7.5, STYLE 1): import-linter checks the contracts declared in
``pyproject.toml`` (``[tool.importlinter]``), and ``make lint`` runs it.

Here ``lint-imports`` runs on the real packages, and on a throwaway package with a known
violation of each kind, so a contract that checks nothing (a typo in a module name, a contract
type that lets everything through) cannot pass silently.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = (
    "pure-domain",
    "routes-use-the-application-layer",
    "projections-are-pure",
    "core-knows-no-process",
    "api-runs-without-the-worker",
)


def lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # The custom contract type lives in tools/, importable from the repository root.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(cwd)])}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_import_contract_is_kept() -> None:
    result = lint_imports()

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


def test_each_contract_is_declared_and_checked() -> None:
    # Run one at a time, so a contract missing from pyproject.toml is an error here.
    for contract in CONTRACTS:
        result = lint_imports("--contract", contract)
        assert "Contracts: 1 kept" in result.stdout or "1 broken" in result.stdout, (
            contract,
            result.stdout + result.stderr,
        )


def test_the_domain_contract_is_kept() -> None:
    result = lint_imports("--contract", "pure-domain")

    assert result.returncode == 0, result.stdout + result.stderr


def _package(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


def test_a_violating_import_is_caught(tmp_path: Path) -> None:
    _package(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/store.py": "import sqlalchemy\n",
            "shop/api.py": "from shop import store\n",
            "shop/domain/__init__.py": "",
            "shop/domain/good.py": """
                import datetime
                from collections.abc import Callable

                from pydantic import BaseModel

                from . import money
                from .money import Money
            """,
            "shop/domain/money.py": "from decimal import Decimal\nMoney = Decimal\n",
            "shop/domain/orm.py": "import json\n\nimport sqlalchemy as sa\n",
            "shop/domain/leaky.py": "from .. import store\n",
            "shop/domain/typed.py": """
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    import httpx
            """,
            "shop/domain/lazy.py": "def later():\n    import pydantic_core\n",
        },
    )
    (tmp_path / "contracts.toml").write_text(
        textwrap.dedent(
            """
            [tool.importlinter]
            root_packages = ["shop"]
            include_external_packages = true
            contract_types = ["allowed_imports: tools.import_contracts.AllowedImportsContract"]

            [[tool.importlinter.contracts]]
            id = "pure-domain"
            name = "pure domain"
            type = "allowed_imports"
            source_modules = ["shop.domain"]
            allowed_modules = ["pydantic"]

            [[tool.importlinter.contracts]]
            id = "api-without-store"
            name = "api without store"
            type = "forbidden"
            source_modules = ["shop.api"]
            forbidden_modules = ["shop.store", "sqlalchemy"]
            allow_indirect_imports = true
            """
        )
    )

    result = lint_imports("contracts.toml", cwd=tmp_path)

    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "Contracts: 0 kept, 2 broken." in out
    assert "shop.domain.orm -> sqlalchemy (l.3)" in out
    assert "shop.domain.leaky -> shop.store (l.1)" in out
    assert "shop.domain.typed -> httpx (l.5)" in out
    assert "shop.domain.lazy -> pydantic_core (l.2)" in out  # pydantic's own dependencies too
    assert "shop.domain.good" not in out  # stdlib, pydantic and the domain itself pass
    assert "shop.api -> shop.store (l.1)" in out
