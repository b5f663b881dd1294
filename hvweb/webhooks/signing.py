"""The signature of a delivery: HMAC-SHA256 over the timestamp and the body.

A receiver recomputes ``HMAC-SHA256(secret, f"{timestamp}.".encode() + body)``
with the endpoint's secret, compares it in constant time with the
``X-Hvweb-Signature`` header (``sha256=<hex>``), and refuses a timestamp
(``X-Hvweb-Timestamp``, Unix seconds) older than a few minutes, so a captured
delivery cannot be replayed later: the timestamp is inside the signed text, so
it cannot be changed without breaking the signature.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "X-Hvweb-Signature"
TIMESTAMP_HEADER = "X-Hvweb-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Hvweb-Signature`` value for ``body`` sent at ``timestamp``."""
    text = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float,
    tolerance_s: float = 300,
) -> bool:  # fmt: skip
    """Whether ``signature`` signs ``body`` at ``timestamp``, recently enough."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)
