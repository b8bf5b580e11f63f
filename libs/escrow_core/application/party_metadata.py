"""A party's ``metadata``: the rules are the domain's (``escrow_core.domain.metadata``), which
orders share; here a broken one becomes the application's 422 ``invalid_metadata``, naming the
key at fault in ``errors[]``.
"""

from collections.abc import Mapping

from escrow_core.application.errors import Invalid
from escrow_core.domain import metadata as rules
from escrow_core.domain.errors import InvalidMetadata
from escrow_core.domain.metadata import MAX_KEY_LENGTH, MAX_KEYS, MAX_VALUE_LENGTH

__all__ = ["MAX_KEYS", "MAX_KEY_LENGTH", "MAX_VALUE_LENGTH", "merged"]


def merged(kept: Mapping[str, str], change: Mapping[str, object]) -> dict[str, str]:
    """``kept`` with ``change`` applied; ``invalid_metadata`` if the change or the result
    breaks a rule (a registration is a change to nothing)."""
    try:
        return rules.merged(kept, change)
    except InvalidMetadata as broken:
        raise Invalid(
            InvalidMetadata.code,
            broken.message,
            field=broken.field,
            where="body",
            reason=broken.reason,
            message=broken.rule,
        ) from None
