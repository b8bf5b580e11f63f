"""Which strings could be our ids: junk is answered "not found" without a lookup."""

import re

# Our ids are a prefix and 1-64 letters and digits; anything else names nothing.
_WELL_FORMED_ID = re.compile(r"[a-z]{2,3}_[A-Za-z0-9]{1,64}")


def well_formed(identifier: str, prefix: str) -> bool:
    """Could ``identifier`` be one of our ids with ``prefix``?"""
    return identifier.startswith(f"{prefix}_") and _WELL_FORMED_ID.fullmatch(identifier) is not None
