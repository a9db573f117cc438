"""Webhook signatures (reference §8.3): ``X-Webhook-Signature`` is the hex HMAC-SHA256 of
the exact raw body, keyed with the org's signing secret (its UTF-8 bytes).

The delivery id and timestamp headers are ours: the id stays the same on every retry of
one delivery, so a receiver that remembers ids processes each delivery once. Neither is
covered by the signature (the reference signs the body alone); the body carries the
call id, and a receiver wanting replay protection can reject old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Webhook-Signature"
ID_HEADER = "X-Webhook-Id"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str) -> bool:
    """Constant-time check; accepts the hex digest with or without a ``sha256=`` prefix."""
    given = signature.strip().lower().removeprefix("sha256=")
    return hmac.compare_digest(sign(body, secret), given)


def delivery_headers(body: bytes, secret: str, delivery_id: str, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret),
        ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
    }
