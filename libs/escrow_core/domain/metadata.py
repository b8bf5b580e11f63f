"""``metadata``, Stripe-like, on parties and orders: at most 20 keys of 1-40 printable
characters, each value a string of at most 500. A change merges into what is kept; a key set
to "" is removed; the limits apply to the result. An order's ``client_reference`` is 1-100
printable characters.

Every broken rule is ``InvalidMetadata`` (``invalid_metadata``), naming the key at fault in
``field`` and what is wrong in ``reason``.
"""

import re
from collections.abc import Mapping

from escrow_core.domain.errors import InvalidClientReference, InvalidMetadata

MAX_KEYS = 20
MAX_KEY_LENGTH = 40
MAX_VALUE_LENGTH = 500
MAX_CLIENT_REFERENCE_LENGTH = 100

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def printable(text: str) -> bool:
    """No control characters but tab and line breaks (PostgreSQL cannot even store NUL), and
    no lone surrogates (not UTF-8)."""
    return _CONTROL.search(text) is None


def merged(kept: Mapping[str, str], change: Mapping[str, object]) -> dict[str, str]:
    """``kept`` with ``change`` applied; ``InvalidMetadata`` if the change or the result breaks
    a rule (a first setting is a change to nothing)."""
    result = dict(kept)
    for key, value in change.items():
        field = f"metadata.{key}"
        if not key or len(key) > MAX_KEY_LENGTH or not printable(key):
            raise InvalidMetadata(
                f"a key is 1-{MAX_KEY_LENGTH} printable characters", field, "invalid_key"
            )
        if not isinstance(value, str):
            raise InvalidMetadata('a value is a string ("" removes the key)', field, "not_a_string")
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidMetadata(
                f"a value is at most {MAX_VALUE_LENGTH} characters", field, "value_too_long"
            )
        if not printable(value):
            raise InvalidMetadata("a value has no control characters", field, "invalid_value")
        if value == "":
            result.pop(key, None)
        else:
            result[key] = value
    if len(result) > MAX_KEYS:
        raise InvalidMetadata(f"at most {MAX_KEYS} keys", "metadata", "too_many_keys")
    return result


def check_client_reference(reference: str | None) -> None:
    """``InvalidClientReference`` unless it is absent or 1-100 printable characters."""
    if reference is None:
        return
    if not 1 <= len(reference) <= MAX_CLIENT_REFERENCE_LENGTH or not printable(reference):
        raise InvalidClientReference(
            f"client_reference is 1-{MAX_CLIENT_REFERENCE_LENGTH} printable characters",
            field="client_reference",
        )
