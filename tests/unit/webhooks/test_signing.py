"""Signatures any subscriber can check with the public ``standardwebhooks`` verifier."""

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from escrow_core.webhooks.signing import new_secret, secret_key, sign, signed_headers

BODY = b'{"id":"evt_1","type":"funds.released","data":{"gross":100}}'


def test_a_secret_is_whsec_and_32_random_bytes_in_base64() -> None:
    secret = new_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret


def test_the_public_verifier_accepts_our_signature() -> None:
    secret = new_secret()
    headers = signed_headers("evt_1", int(time.time()), BODY, [secret])

    assert Webhook(secret).verify(BODY, headers)["type"] == "funds.released"


def test_the_signature_is_hmac_sha256_of_id_timestamp_body_with_the_decoded_secret() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()

    signature = sign(secret, "evt_1", 1_700_000_000, b"{}")

    import hashlib
    import hmac

    expected = hmac.new(b"k" * 32, b"evt_1.1700000000.{}", hashlib.sha256).digest()
    assert signature == "v1," + base64.b64encode(expected).decode()
    assert secret_key(secret) == b"k" * 32


def test_another_secret_a_changed_body_or_id_does_not_verify() -> None:
    secret = new_secret()
    headers = signed_headers("evt_1", int(time.time()), BODY, [secret])

    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"100", b"999"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "evt_2"})


def test_a_stale_timestamp_is_refused_by_the_verifier() -> None:
    # Why the timestamp is the real wall clock: the verifier allows five minutes of skew.
    secret = new_secret()
    headers = signed_headers("evt_1", int(time.time()) - 3600, BODY, [secret])

    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


def test_during_a_rotation_both_secrets_verify() -> None:
    new, old = new_secret(), new_secret()

    headers = signed_headers("evt_1", int(time.time()), BODY, [new, old])

    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(BODY, headers)
    assert Webhook(old).verify(BODY, headers)


def test_a_secret_without_the_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        secret_key(base64.b64encode(b"k" * 32).decode())
    with pytest.raises(ValueError, match="at least one secret"):
        signed_headers("evt_1", 1, BODY, [])
