"""Prefixed public ids (``ord_``, ``pty_``, ``key_`` ...): random, URL-safe, unguessable."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_LENGTH = 24  # 62**24 ~ 2**143: no collisions, no enumeration
# One urandom read per id instead of one per character: each random byte below 248 (= 4 * 62)
# maps to a letter or digit, every one with probability 4/256; the bytes 248-255 are dropped
# (rejection), so the letters stay uniform. 32 bytes keep 31 on average; fewer than 24 is
# rare but possible, hence the loop.
_KEEP = 4 * len(_ALPHABET)
_TO_ALPHABET = bytes(ord(_ALPHABET[b % len(_ALPHABET)]) for b in range(256))
_DROPPED = bytes(range(_KEEP, 256))


def new_id(prefix: str) -> str:
    letters = b""
    while len(letters) < _LENGTH:
        letters += secrets.token_bytes(32).translate(_TO_ALPHABET, _DROPPED)
    return f"{prefix}_" + letters[:_LENGTH].decode("ascii")
