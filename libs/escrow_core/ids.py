"""Prefixed public ids (``ord_``, ``pty_``, ``key_`` ...): random, URL-safe, unguessable."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_LENGTH = 24  # 62**24 ~ 2**143: no collisions, no enumeration


def new_id(prefix: str) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
