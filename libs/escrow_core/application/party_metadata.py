"""A party's ``metadata``, Stripe-like: at most 20 keys of 1-40 characters, each value a
string of at most 500. A change merges into what is kept; a key set to "" is removed.

Every broken rule is 422 ``invalid_metadata``, naming the key at fault in ``errors[]``.
"""

import re
from collections.abc import Mapping

from escrow_core.application.errors import Invalid

MAX_KEYS = 20
MAX_KEY_LENGTH = 40
MAX_VALUE_LENGTH = 500


def _invalid(field: str, reason: str, message: str) -> Invalid:
    return Invalid(
        "invalid_metadata",
        f"metadata: {message}.",
        field=field,
        where="body",
        reason=reason,
        message=message,
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _printable(text: str) -> bool:
    """No control characters but tab and line breaks (PostgreSQL cannot even store NUL), and
    no lone surrogates (not UTF-8)."""
    return _CONTROL.search(text) is None


def merged(kept: Mapping[str, str], change: Mapping[str, object]) -> dict[str, str]:
    """``kept`` with ``change`` applied; ``invalid_metadata`` if the change or the result
    breaks a rule (a registration is a change to nothing)."""
    result = dict(kept)
    for key, value in change.items():
        field = f"metadata.{key}"
        if not key or len(key) > MAX_KEY_LENGTH or not _printable(key):
            raise _invalid(
                field, "invalid_key", f"a key is 1-{MAX_KEY_LENGTH} printable characters"
            )
        if not isinstance(value, str):
            raise _invalid(field, "not_a_string", 'a value is a string ("" removes the key)')
        if len(value) > MAX_VALUE_LENGTH:
            raise _invalid(
                field, "value_too_long", f"a value is at most {MAX_VALUE_LENGTH} characters"
            )
        if not _printable(value):
            raise _invalid(field, "invalid_value", "a value has no control characters")
        if value == "":
            result.pop(key, None)
        else:
            result[key] = value
    if len(result) > MAX_KEYS:
        raise _invalid("metadata", "too_many_keys", f"at most {MAX_KEYS} keys")
    return result
