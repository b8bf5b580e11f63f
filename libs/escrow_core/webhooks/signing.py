"""Standard Webhooks signing: ``webhook-signature: v1,<base64 HMAC-SHA256("{id}.{ts}.{body}")>``.

A secret is ``whsec_`` + base64 of 32 random bytes; the HMAC key is the decoded bytes. During a
rotation the previous secret signs too, so the header carries both signatures, space-separated.
"""

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 after ``whsec_``, decoded."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<signature>`` for ``body`` sent as ``message_id`` at ``timestamp``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    message_id: str, timestamp: int, body: bytes, secrets_: Sequence[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret given (newest first)."""
    if not secrets_:
        raise ValueError("at least one secret signs a webhook")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets_),
    }
