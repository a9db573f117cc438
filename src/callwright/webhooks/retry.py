"""When to try a delivery again. Pure: the caller passes the random draw.

Rules:
1. A 2xx answer delivers. Anything else (connection failure, timeout, other status,
   redirects, which webhooks do not follow) is retried.
2. A refusal by the outbound guard is final at once: the address will not become
   allowed by waiting, and the operator's fix (allow-list) is followed by a resend.
3. Retry ``n`` (1-based) waits ``base * 3**(n-1)``, capped at ``max_delay``, times a
   jitter factor in [0.8, 1.2) so receivers that failed together are not hit together.
   Defaults (8 attempts, base 80 s) put the last attempt about 24 h after the first.
4. After ``max_attempts`` attempts the delivery is dead (dead-lettered); a resend makes a
   new delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FACTOR = 3.0
JITTER = 0.2

Status = Literal["delivered", "pending", "dead"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 80.0
    max_delay_seconds: float = 86400.0

    def delay(self, retry: int, draw: float) -> float:
        """Seconds before retry number ``retry`` (1 = the first retry); ``draw`` in [0, 1)."""
        raw = min(self.base_seconds * FACTOR ** (retry - 1), self.max_delay_seconds)
        return raw * (1 - JITTER + 2 * JITTER * draw)


@dataclass(frozen=True, slots=True)
class Step:
    status: Status
    delay_seconds: float | None = None  # set when status is "pending"


def after_attempt(
    policy: RetryPolicy, attempts_made: int, *, delivered: bool, final: bool, draw: float
) -> Step:
    """What happens to a delivery once its ``attempts_made``-th attempt is over."""
    if delivered:
        return Step("delivered")
    if final or attempts_made >= policy.max_attempts:
        return Step("dead")
    return Step("pending", policy.delay(attempts_made, draw))
