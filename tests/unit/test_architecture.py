"""The domain imports only the standard library, pydantic and itself (DESIGN 1, STYLE 1).

The checker lives in tools/check_domain_imports.py (run by ``make lint``); it is loaded here
in-process, run on the real domain, and shown to catch each kind of violation on a throwaway
package, so a broken checker cannot pass silently.
"""

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "check_domain_imports.py"


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_domain_imports", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


checker = _load_checker()


def _fake_domain(root: Path, files: dict[str, str]) -> Path:
    """A throwaway copy of the domain's shape: only the given modules, with these sources."""
    domain = root / "domain"
    (domain / "order").mkdir(parents=True)
    (domain / "__init__.py").write_text("")
    (domain / "order" / "__init__.py").write_text("")
    for name, source in files.items():
        (domain / name).write_text(textwrap.dedent(source))
    return domain


def _offending_modules(domain: Path) -> list[str]:
    return [o.reason.removeprefix("imports ") for o in checker.find_offenders(domain)]


def test_the_real_domain_imports_only_stdlib_pydantic_and_itself() -> None:
    offenders = checker.find_offenders()
    assert offenders == [], "\n".join(str(o) for o in offenders)
    assert checker.main([]) == 0


def test_the_checker_reads_every_domain_module() -> None:
    # Guard against a checker that passes because it looks at nothing.
    modules = list(checker.DOMAIN_DIR.rglob("*.py"))
    assert len(modules) >= 15
    assert checker.DOMAIN_DIR / "order" / "decide.py" in modules


def test_a_module_importing_sqlalchemy_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    domain = _fake_domain(
        tmp_path,
        {
            "money.py": "from decimal import Decimal\nfrom pydantic import BaseModel\n",
            "order/repo.py": "import json\n\nimport sqlalchemy as sa\n",
        },
    )

    assert checker.main([str(domain)]) == 1

    out = capsys.readouterr().out
    assert "repo.py:3: imports sqlalchemy" in out
    assert "money.py" not in out


@pytest.mark.parametrize(
    "source",
    [
        "import fastapi",
        "from sqlalchemy.ext.asyncio import AsyncSession",
        "import pydantic_core",
        "from annotated_types import Gt",
        "from typing_extensions import Self",
        "import escrow_core",
        "from escrow_core import settings",
        "from escrow_core.store import events",
        "from ... import store",  # relative, but out of the domain: escrow_core.store
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import httpx",
        "def later():\n    import requests",
        "import importlib\nmodule = importlib.import_module('sqlalchemy')",
        "engine = __import__('sqlalchemy')",
    ],
)
def test_each_kind_of_forbidden_import_is_reported(tmp_path: Path, source: str) -> None:
    domain = _fake_domain(tmp_path, {"order/bad.py": source})

    offenders = checker.find_offenders(domain)

    assert len(offenders) == 1, offenders
    assert offenders[0].path == domain / "order" / "bad.py"


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations",
        "import datetime, decimal, enum, typing",
        "from collections.abc import Callable",
        "from pydantic import BaseModel",
        "from pydantic.fields import FieldInfo",
        "from escrow_core.domain.money import fee_for",
        "import escrow_core.domain.order.state",
        "from .. import events",  # escrow_core.domain.events
        "from .state import OrderState",
        "from . import state",
    ],
)
def test_allowed_imports_pass(tmp_path: Path, source: str) -> None:
    domain = _fake_domain(tmp_path, {"order/good.py": source})

    assert checker.find_offenders(domain) == []


def test_relative_imports_resolve_against_the_importing_module() -> None:
    resolve = checker.resolve_relative
    assert resolve("escrow_core.domain.order.state", False, 1, None) == "escrow_core.domain.order"
    assert resolve("escrow_core.domain.order.state", False, 2, "events") == (
        "escrow_core.domain.events"
    )
    assert resolve("escrow_core.domain.order", True, 1, "state") == "escrow_core.domain.order.state"
    assert resolve("escrow_core.domain.order", True, 2, None) == "escrow_core.domain"
    assert not checker.is_allowed(resolve("escrow_core.domain.order.x", False, 3, "store"))
