"""Write the OpenAPI document: ``python -m escrow_api.openapi_export openapi/openapi.json``."""

import json
import sys
from pathlib import Path
from typing import Any

from escrow_api.app import create_app
from escrow_core.settings import Settings


def settings() -> Settings:
    """A deployment as shipped, whatever the environment says: the document does not depend
    on the database (no lifespan runs), and the sandbox-only routes are not in it."""
    return Settings(database_url="sqlite+aiosqlite:///:memory:", sandbox=False)


def document() -> dict[str, Any]:
    return create_app(settings()).openapi()


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(render())
