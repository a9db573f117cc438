"""The one error a SIP parser raises on bad input from the network."""

from __future__ import annotations


class SipParseError(Exception):
    """Malformed SIP (or SDP) input.

    ``reason`` says what was wrong, for logs and counters; ``status`` is the response a
    UAS should send when the input was a request (400 unless a more precise code
    applies, such as 505 for an unknown SIP version). A response is never answered.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
