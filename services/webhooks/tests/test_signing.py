"""Our Standard Webhooks signatures against the `standardwebhooks` library (what receivers run)."""

from __future__ import annotations

import base64
import os
import time
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from corral_api.domain.webhook_endpoint import secret_from
from corral_webhooks.domain import signing

BODY = b'{"event":"sandbox.created","id":"x"}'


def test_the_library_verifies_what_we_sign_and_signs_as_we_do() -> None:
    secret = secret_from(os.urandom(32))
    now = int(time.time())
    headers = signing.headers([secret], "msg_1", now, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers) == {"event": "sandbox.created", "id": "x"}
    library = Webhook(secret).sign("msg_1", datetime.fromtimestamp(now, tz=timezone.utc), BODY.decode())
    assert library == headers["webhook-signature"]


def test_a_changed_body_id_timestamp_or_secret_fails_verification() -> None:
    secret = secret_from(os.urandom(32))
    now = int(time.time())
    headers = signing.headers([secret], "msg_1", now, BODY)
    for body, changed in ((BODY + b" ", headers), (BODY, {**headers, "webhook-id": "msg_2"}),
                          (BODY, {**headers, "webhook-timestamp": str(now - 1)})):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body, changed)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_from(os.urandom(32))).verify(BODY, headers)


def test_secrets_are_whsec_and_base64_of_32_random_bytes() -> None:
    secret = secret_from(os.urandom(32))
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert signing.key_of(secret) == base64.b64decode(secret[6:])


def test_after_a_rotation_either_secret_verifies() -> None:
    old, new = secret_from(os.urandom(32)), secret_from(os.urandom(32))
    headers = signing.headers([new, old], "msg_1", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(BODY, headers) and Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_from(os.urandom(32))).verify(BODY, headers)
