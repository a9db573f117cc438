"""Phone numbers to E.164. Bland assumes US numbers when no country code is given."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "US"


def to_e164(raw: str, *, region: str = DEFAULT_REGION) -> str:
    """E.164 form of ``raw``; raises ``ValueError`` with a message fit for an API error."""
    text = raw.strip()
    if not text:
        raise ValueError("is empty")
    digits = sum(ch.isdigit() for ch in text)
    if digits == 11 and text.startswith("1"):
        text = "+" + text  # 1XXXXXXXXXX: a US number with its country code but no +
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"is not a phone number ({exc._msg})") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("is not a possible phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
