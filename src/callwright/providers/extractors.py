"""Deterministic typed extractors: what the embedded (no-LLM) mode uses to fill variables.

``extract_value(type, utterance, now=..., tz=...)`` reads one value of a type from what
the caller said (as transcribed: number words, "john dot smith at gmail dot com", "next
Tuesday at three thirty") and returns it as plain JSON-ready data, or ``None`` when the
utterance holds no such value:

=========================  ==========================================================
type                       result
=========================  ==========================================================
integer / int              ``int`` ("twenty five", "a dozen", "1,250")
number / float / decimal   ``int`` or ``float`` ("three point five", "2.5 million")
boolean / bool             ``True`` / ``False`` ("yeah sure", "nope"; "not sure" -> None)
date                       ISO ``"YYYY-MM-DD"`` ("tomorrow", "next Tuesday", "March 5th")
time                       ``"HH:MM"`` ("3pm", "half past three", "tomorrow morning")
datetime                   ISO datetime, with the zone's offset when known
email                      ``"john.smith@gmail.com"``
phone                      E.164 ``"+14155550132"`` (region from ``hint``, default US)
name                       ``"John Smith"`` after "my name is", "this is", "I'm", ...
string (and anything else) the utterance, trimmed; a name/email/phone if ``hint`` says so
=========================  ==========================================================

Rules for dates and times, all relative to the ``now`` argument (nothing here reads a
clock): a bare weekday ("Tuesday", "next Tuesday") is the first one after today, "this
Tuesday" may be today; a day and month without a year is the next such day from today;
"5/3" is month/day unless ``tz`` is outside the Americas (then day/month); a bare hour
without am/pm is read as business hours (1-6 -> afternoon, 7-11 -> morning); "morning",
"afternoon", "evening" alone mean 09:00, 14:00, 18:00. A ``datetime`` needs a time: a
date alone gives ``None`` so the agent asks for the time.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

# --------------------------------------------------------------------------- numbers

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_MULTIPLIERS = {"hundred": 100, "dozen": 12}
_NUMBER_WORDS = set(_UNITS) | set(_TENS) | set(_ORDINALS) | set(_SCALES) | set(_MULTIPLIERS)


def _normalise(text: str) -> str:
    text = text.lower().replace("’", "'")
    text = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", text)
    text = re.sub(r"\bo'?\s?clock\b", "oclock", text)
    return re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)


def _ordinal_suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _words_to_digits(text: str) -> str:
    """Rewrite number words as digits: "twenty five" -> "25", "march fifth" -> "march
    5th", "three point five" -> "3.5", "five oh five" -> "5 05", "a dozen" -> "12".

    Two units in a row stay two numbers ("five five five" -> "5 5 5") so spoken digit
    strings (phone numbers) and clock times ("three thirty" -> "3 30") survive."""
    words = _normalise(text).split()
    out: list[str] = []
    i = 0
    while i < len(words):
        parsed = _parse_number_words(words, i)
        if parsed is None:
            out.append(words[i])
            i += 1
            continue
        value, end, ordinal = parsed
        if ordinal:
            out.append(f"{int(value)}{_ordinal_suffix(int(value))}")
        else:
            out.append(_format_number(value))
        i = end
        # "five oh five": a spoken zero before a digit, after a number, is "05".
        if i + 1 < len(words) and _bare(words[i]) in ("oh", "o"):
            digit = _UNITS.get(_bare(words[i + 1]), -1)
            if 0 < digit < 10:
                out.append(f"0{digit}")
                i += 2
    return " ".join(out)


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _bare(word: str) -> str:
    return word.strip(',;!?"()')


def _parse_number_words(words: list[str], start: int) -> tuple[float, int, bool] | None:
    """A run of number words at ``words[start]``: (value, index after it, is ordinal)."""
    first = _bare(words[start])
    nxt = _bare(words[start + 1]) if start + 1 < len(words) else ""
    if first == "a" and nxt == "couple":
        return 2.0, start + 2, False
    if first == "a" and nxt in ("hundred", "thousand", "million", "billion", "dozen"):
        # "a hundred" reads as "one hundred": same length, so indexes carry over.
        return _parse_number_words([*words[:start], "one", *words[start + 1 :]], start)
    if first == "half" and nxt == "a" and _bare(" ".join(words[start + 2 : start + 3])) == "dozen":
        return 6.0, start + 3, False
    if first not in _NUMBER_WORDS or first in _MULTIPLIERS or first in _SCALES:
        return None
    total, current = 0.0, 0.0
    i = start
    last = ""  # "unit", "teen", "tens", "hundred", "scale"
    while i < len(words):
        word = _bare(words[i])
        if word in _ORDINALS and last not in ("unit", "teen"):
            return total + current + _ORDINALS[word], i + 1, True
        if word in _UNITS:
            kind = "unit" if _UNITS[word] < 10 else "teen"
            if last in ("unit", "teen") or (kind == "teen" and last == "tens"):
                break
            current += _UNITS[word]
            last = kind
        elif word in _TENS:
            if last in ("unit", "teen", "tens"):
                break
            current += _TENS[word]
            last = "tens"
        elif word in _MULTIPLIERS:
            current = max(current, 1) * _MULTIPLIERS[word]
            last = "hundred"
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
            last = "scale"
        elif word == "and" and last and i + 1 < len(words):
            following = _bare(words[i + 1])
            if following in _UNITS or following in _TENS:
                i += 1
                continue
            if following == "a" and i + 2 < len(words) and _bare(words[i + 2]) == "half":
                return total + current + 0.5, i + 3, False
            break
        elif word == "point" and last and i + 1 < len(words) and _bare(words[i + 1]) in _UNITS:
            digits = ""
            i += 1
            while i < len(words) and _bare(words[i]) in _UNITS and _UNITS[_bare(words[i])] < 10:
                digits += str(_UNITS[_bare(words[i])])
                i += 1
            return total + current + float("0." + digits), i, False
        else:
            break
        i += 1
    if not last:
        return None
    return total + current, i, False


_NUMBER = re.compile(
    r"(?<![\w.])(-)?\$?(\d[\d,]*(?:\.\d+)?)(?!\d)(?:\s*(thousand|million|billion|k)\b)?"
)


_CLOCK_SPANS = re.compile(
    r"\b\d{1,2}:\d{2}\b|\b\d{1,2}(?:\s\d{2})?\s*(?:am|pm|oclock)\b"
    r"|\b(?:half|quarter) (?:past|to|after|till|of) \d{1,2}\b|\bat \d{1,2}(?:\s\d{2})?\b(?!\s*%)"
)


def parse_number(utterance: str) -> int | float | None:
    """The first number in the utterance, as ``int`` when it is whole. Clock times
    ("at 3", "half past ten", "5:30", "7pm") are not quantities and are skipped."""
    text = _CLOCK_SPANS.sub(" ", _words_to_digits(utterance))
    text = re.sub(r"\b(?:minus|negative)\s+(?=\d)", "-", text)
    for match in _NUMBER.finditer(text):
        raw = match.group(2).replace(",", "")
        if raw.endswith("."):
            raw = raw[:-1]
        try:
            value = float(raw)
        except ValueError:
            continue
        scale = match.group(3)
        if scale:
            value *= 1_000 if scale == "k" else _SCALES[scale]
        if match.group(1):
            value = -value
        return int(value) if value.is_integer() else value
    return None


def parse_integer(utterance: str) -> int | None:
    value = parse_number(utterance)
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(value)


# --------------------------------------------------------------------------- yes / no

_UNSURE = re.compile(
    r"\b(not sure|unsure|don'?t know|dunno|no idea|maybe|perhaps|not certain|depends|"
    r"i guess not sure|can'?t say|hard to say)\b"
)
_YES_NO: list[tuple[str, bool]] = [
    (r"no problem|no worries|why not|not a problem", True),
    (r"absolutely not|definitely not|certainly not|of course not|not really|not at all|"
     r"no thanks?|no thank you|nope|nah|negative|never|wrong|incorrect|"
     r"that'?s not right|that is not right|not correct|isn'?t right|i don'?t|i do not|"
     r"i won'?t|i will not|don'?t|do not|no way|cancel|false|no", False),
    (r"yes|yeah|yea|yep|yup|ya|sure|correct|right|absolutely|definitely|certainly|"
     r"of course|ok|okay|affirmative|please do|go ahead|i do|i would|i will|that works|"
     r"sounds good|sounds great|uh huh|mm hmm|indeed|true|exactly|perfect|alright|all right|"
     r"please", True),
]  # fmt: skip
_YES_NO_RE = [(re.compile(rf"\b(?:{pattern})\b"), value) for pattern, value in _YES_NO]


def parse_yes_no(utterance: str) -> bool | None:
    """Earliest yes or no phrase wins ("yeah sure" -> True, "absolutely not" -> False);
    uncertainty ("I'm not sure", "maybe") is ``None``."""
    text = _normalise(utterance)
    if _UNSURE.search(text):
        return None
    best: tuple[int, int, bool] | None = None  # (start, -length, value)
    for pattern, value in _YES_NO_RE:
        for match in pattern.finditer(text):
            key = (match.start(), -(match.end() - match.start()), value)
            if best is None or key[:2] < best[:2]:
                best = key
    return None if best is None else best[2]


# --------------------------------------------------------------------------- email / phone

_EMAIL = re.compile(r"[a-z0-9][a-z0-9._%+\-]*@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}")
_SPOKEN_SYMBOLS = [
    (r"\s+(?:at sign|at)\s+", "@"),
    (r"\s+(?:dot|period|point)\s+", "."),
    (r"\s+(?:underscore|under score)\s+", "_"),
    (r"\s+(?:dash|hyphen|minus)\s+", "-"),
    (r"\s+plus\s+", "+"),
]


def parse_email(utterance: str) -> str | None:
    text = _normalise(utterance).replace(" @ ", "@")
    found = _EMAIL.search(text)
    if found is None:
        spoken = f" {text} "
        # Spelled-out letters ("j o h n") are one word.
        spoken = re.sub(
            r"\b(?:[a-z0-9] ){1,}[a-z0-9]\b", lambda m: m.group(0).replace(" ", ""), spoken
        )
        for pattern, symbol in _SPOKEN_SYMBOLS:
            spoken = re.sub(pattern, symbol, spoken)
        found = _EMAIL.search(spoken)
    if found is None:
        return None
    return found.group(0).strip(".")


def parse_phone(utterance: str, region: str = "US") -> str | None:
    """The first possible phone number, E.164; spoken digits ("five five five", "double
    two", "oh") count. Possible, not valid: a number the caller reads out is theirs to
    give, whether or not its area code is assigned (555 test numbers included)."""
    text = _normalise(utterance)
    text = re.sub(r"\b(?:oh|o)\b", "0", text)
    text = _words_to_digits(text)
    text = re.sub(r"\bplus\s*(?=\d)", "+", text)
    text = re.sub(r"\bdouble (\d)\b", r"\1\1", text)
    text = re.sub(r"\btriple (\d)\b", r"\1\1\1", text)
    # Spoken digits come out space separated: join runs of digit groups.
    text = re.sub(r"(?<=\d)[\s,.\-]+(?=\d)", "", text)
    for match in phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.POSSIBLE
    ):
        reason = phonenumbers.is_possible_number_with_reason(match.number)
        if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
            continue  # e.g. a local-only 7-digit number: not one we could call back
        return str(phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164))
    return None


# --------------------------------------------------------------------------- names

_NAME_CUES = re.compile(
    r"\b(?:my name is|my name's|name is|name's|this is|i am|i'm|im|it's|it is|call me|"
    r"they call me|you can call me|speaking with|you're speaking with)\s+"
)
_NOT_NAMES = {
    "a", "an", "the", "not", "fine", "good", "great", "ok", "okay", "here", "just", "so",
    "sorry", "well", "calling", "looking", "trying", "interested", "about", "from", "with",
    "and", "but", "or", "i", "my", "your", "yes", "no", "yeah", "sure", "going", "doing",
    "very", "really", "also", "still", "on", "in", "at", "for", "to", "of", "is", "was",
    "gonna", "wanting", "hoping", "afraid", "happy", "glad", "busy", "ready", "available",
    "free", "speaking", "please", "thanks", "thank", "hi", "hello", "hey", "um", "uh",
    "that", "this", "it", "what", "who", "correct", "right", "sir", "ma'am", "mr", "mrs",
    "ms", "dr", "miss", "wondering", "having", "getting", "new", "back",
    "again", "sick", "late", "there", "actually", "like", "need", "want", "have", "had",
}  # fmt: skip
_FILLER = re.compile(r"^(?:(?:um+|uh+|er+|oh|well|yeah|yes|sure|hi|hello|hey|so),?\s+)+")


def parse_name(utterance: str) -> str | None:
    """A person's name after a cue ("my name is Ana Lopez") or, for a short answer to
    "what is your name?", the answer itself ("Ana Lopez")."""
    raw = utterance.strip().replace("’", "'")
    lowered = raw.lower()
    match = _NAME_CUES.search(lowered)
    if match is not None:
        rest = raw[match.end() :]
    else:
        filler = _FILLER.match(lowered)
        rest = raw[filler.end() if filler is not None else 0 :]
        if len(rest.split()) > 3:
            return None
    words: list[str] = []
    for word in re.split(r"\s+", rest):
        clean = word.strip('.,;:!?"()')
        if not clean or not re.fullmatch(r"[^\W\d_][\w'\-]*", clean):
            break
        if clean.lower() in _NOT_NAMES or clean.lower().endswith("ing"):
            break
        words.append(clean)
        if len(words) == 3 or word[-1:] in ".,;:!?":
            break
    if not words:
        return None
    return " ".join(w[:1].upper() + w[1:] if w.islower() else w for w in words)


# --------------------------------------------------------------------------- dates and times

_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tues": 1, "tue": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thurs": 3, "thu": 3, "friday": 4, "fri": 4, "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY_RE = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th)"
_YEAR = r"(?:,?\s+(\d{4}))?"

_DATE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")),
    ("slash", re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?\b")),
    ("month_day", re.compile(rf"\b({_MONTH_RE})\.?\s+(?:the\s+)?(\d{{1,2}}){_ORD}?\b{_YEAR}")),
    ("day_month", re.compile(rf"\b(\d{{1,2}}){_ORD}?\s+(?:of\s+)?({_MONTH_RE})\b{_YEAR}")),
    ("day_after_tomorrow", re.compile(r"\bday after tomorrow\b")),
    ("today", re.compile(r"\b(today|tonight|this (?:morning|afternoon|evening))\b")),
    ("tomorrow", re.compile(r"\b(tomorrow|tmrw|tmr)\b")),
    ("yesterday", re.compile(r"\byesterday\b")),
    ("in_n", re.compile(r"\bin (\d+|a|an) (day|days|week|weeks)\b")),
    ("week_from", re.compile(r"\b(?:a|one|1) week from (?:today|now)\b")),
    ("weekday", re.compile(rf"\b(?:(this|next|coming|this coming)\s+)?({_WEEKDAY_RE})\b")),
    ("next_week", re.compile(r"\bnext week\b")),
    ("weekend", re.compile(r"\b(?:this |next )?weekend\b")),
    ("ordinal_day", re.compile(rf"\b(?:the|on) (\d{{1,2}}){_ORD}\b")),
]

_PARTS_OF_DAY = {
    "morning": time(9, 0),
    "noon": time(12, 0),
    "midday": time(12, 0),
    "lunchtime": time(12, 0),
    "lunch time": time(12, 0),
    "afternoon": time(14, 0),
    "evening": time(18, 0),
    "tonight": time(19, 0),
    "night": time(19, 0),
    "midnight": time(0, 0),
    "end of the day": time(17, 0),
    "end of day": time(17, 0),
}


def _local_now(now: datetime, tz: str | None) -> datetime:
    zone = _zone(tz)
    if zone is None:
        return now
    return now.replace(tzinfo=zone) if now.tzinfo is None else now.astimezone(zone)


def _zone(tz: str | None) -> ZoneInfo | None:
    if not tz:
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _day_first(tz: str | None) -> bool:
    return bool(tz) and not str(tz).startswith(("America/", "US/", "Canada/", "Pacific/Honolulu"))


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_day_month(today: date, month: int, day: int, year: int | None) -> date | None:
    if year is not None:
        return _safe_date(year, month, day)
    candidate = _safe_date(today.year, month, day)
    if candidate is not None and candidate >= today:
        return candidate
    return _safe_date(today.year + 1, month, day)


def _date_from(kind: str, m: re.Match[str], today: date, day_first: bool) -> date | None:
    if kind == "iso":
        return _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if kind == "slash":
        a, b = int(m.group(1)), int(m.group(2))
        month, day = (b, a) if day_first else (a, b)
        year = m.group(3)
        if year is None:
            return _next_day_month(today, month, day, None)
        full = int(year) + (2000 if len(year) == 2 else 0)
        return _safe_date(full, month, day)
    if kind == "month_day":
        year = int(m.group(3)) if m.group(3) else None
        return _next_day_month(today, _MONTHS[m.group(1)], int(m.group(2)), year)
    if kind == "day_month":
        year = int(m.group(3)) if m.group(3) else None
        return _next_day_month(today, _MONTHS[m.group(2)], int(m.group(1)), year)
    if kind == "day_after_tomorrow":
        return today + timedelta(days=2)
    if kind == "today":
        return today
    if kind == "tomorrow":
        return today + timedelta(days=1)
    if kind == "yesterday":
        return today - timedelta(days=1)
    if kind == "in_n":
        n = 1 if m.group(1) in ("a", "an") else int(m.group(1))
        return today + timedelta(days=n * (7 if m.group(2).startswith("week") else 1))
    if kind == "week_from":
        return today + timedelta(days=7)
    if kind == "weekday":
        target = _WEEKDAYS[m.group(2)]
        ahead = (target - today.weekday()) % 7
        if m.group(1) in ("this", "this coming") and ahead == 0:
            return today
        return today + timedelta(days=ahead or 7)
    if kind == "next_week":
        return today + timedelta(days=7 - today.weekday())
    if kind == "weekend":
        ahead = (5 - today.weekday()) % 7
        return today + timedelta(days=ahead + (7 if m.group(0).startswith("next") else 0))
    if kind == "ordinal_day":
        day = int(m.group(1))
        candidate = _safe_date(today.year, today.month, day)
        if candidate is not None and candidate >= today:
            return candidate
        month, year = (1, today.year + 1) if today.month == 12 else (today.month + 1, today.year)
        return _safe_date(year, month, day)
    return None


def _find_date(text: str, today: date, day_first: bool) -> tuple[date, int] | None:
    """The earliest date mention in ``text`` (already digitised) and where it starts."""
    best: tuple[date, int] | None = None
    for kind, pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            if (
                kind == "weekday"
                and match.group(2) in ("sat", "sun", "mon", "wed")
                and not match.group(1)
            ):
                continue  # as bare words these are rarely days ("the sun", "I sat")
            if (
                kind == "month_day"
                and match.group(1) in ("may", "mar")
                and not _has_ordinal_day(text, match)
            ):
                continue
            found = _date_from(kind, match, today, day_first)
            if found is not None and (best is None or match.start() < best[1]):
                best = (found, match.start())
            break
    return best


def _has_ordinal_day(text: str, match: re.Match[str]) -> bool:
    """ "may 5th" is a date, "I may 2" is not: an ambiguous month needs an ordinal day."""
    return bool(re.match(rf"\S+\.?\s+(?:the\s+)?\d{{1,2}}{_ORD}", text[match.start() :]))


_CLOCK_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("meridiem", re.compile(r"\b(\d{1,2})(?:[:\s](\d{2}))?\s*(am|pm)\b")),
    # Speech-to-text writes "two thirty pm" as "230 pm" and "ten thirty" as "1030".
    ("meridiem", re.compile(r"\b(\d{1,2})([0-5]\d)\s*(am|pm)\b")),
    ("half_past", re.compile(r"\bhalf past (\d{1,2})\b")),
    ("quarter_past", re.compile(r"\bquarter (?:past|after) (\d{1,2})\b")),
    ("quarter_to", re.compile(r"\bquarter (?:to|till|of) (\d{1,2})\b")),
    ("oclock", re.compile(r"\b(\d{1,2})\s*oclock\b")),
    ("colon", re.compile(r"\b(\d{1,2}):(\d{2})\b")),
    (
        "part_of_day",
        re.compile(
            r"\b(\d{1,2})(?:\s?([0-5]\d))?\s+(?:in the (?:morning|afternoon|evening)|tonight)"
        ),
    ),
    ("at", re.compile(r"\b(?:at|around|about|by) (\d{1,2})(?:\s(\d{2}))?(?![\d/:]|st|nd|rd|th)\b")),
    ("noon", re.compile(r"\b(noon|midday|midnight)\b")),
]


def _clock_from(kind: str, m: re.Match[str]) -> tuple[int, int, str | None] | None:
    """(hour, minute, "am"/"pm"/"24h"/None when the meridiem is unknown)."""
    if kind == "meridiem":
        return int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if kind == "half_past":
        return int(m.group(1)), 30, None
    if kind == "quarter_past":
        return int(m.group(1)), 15, None
    if kind == "quarter_to":
        return (int(m.group(1)) - 1) % 12 or 12, 45, None
    if kind == "oclock":
        return int(m.group(1)), 0, None
    if kind == "colon":
        hour = int(m.group(1))
        return hour, int(m.group(2)), "24h" if hour > 12 or hour == 0 else None
    if kind in ("at", "part_of_day"):
        return int(m.group(1)), int(m.group(2) or 0), None
    if kind == "noon":
        return (0 if m.group(1) == "midnight" else 12), 0, "24h"
    return None


def _find_time(text: str) -> tuple[time, int] | None:
    best: tuple[tuple[int, int, str | None], int] | None = None
    for kind, pattern in _CLOCK_PATTERNS:
        for match in pattern.finditer(text):
            clock = _clock_from(kind, match)
            if clock is not None and (best is None or match.start() < best[1]):
                best = (clock, match.start())
            break
    if best is not None:
        (hour, minute, meridiem), at = best
        if minute > 59 or hour > 23:
            return None
        if meridiem is None:
            if re.search(r"\bmorning\b", text):
                meridiem = "am"
            elif re.search(r"\b(afternoon|evening|tonight|night)\b", text):
                meridiem = "pm"
        if meridiem == "am":
            hour = 0 if hour == 12 else hour
        elif meridiem == "pm":
            hour = hour if hour == 12 or hour > 12 else hour + 12
        elif meridiem is None and 1 <= hour <= 6:
            hour += 12  # business hours: "at 3" is mid-afternoon
        if hour > 23:
            return None
        return time(hour, minute), at
    for phrase, when in sorted(_PARTS_OF_DAY.items(), key=lambda kv: -len(kv[0])):
        found = re.search(rf"\b{phrase}\b", text)
        if found is not None:
            return when, found.start()
    return None


_RELATIVE_TIME = re.compile(r"\bin (\d+|a|an|half an) (hour|hours|minute|minutes|min|mins)\b")


def _relative(text: str, now: datetime) -> datetime | None:
    m = _RELATIVE_TIME.search(text)
    if m is None:
        return None
    amount = {"a": 1.0, "an": 1.0, "half an": 0.5}.get(m.group(1))
    n = amount if amount is not None else float(m.group(1))
    unit = timedelta(hours=1) if m.group(2).startswith("hour") else timedelta(minutes=1)
    return now + n * unit


def parse_date(utterance: str, now: datetime, tz: str | None = None) -> date | None:
    local = _local_now(now, tz)
    text = _words_to_digits(utterance)
    found = _find_date(text, local.date(), _day_first(tz))
    if found is not None:
        return found[0]
    relative = _relative(text, local)
    return relative.date() if relative is not None else None


def parse_time(utterance: str, now: datetime | None = None, tz: str | None = None) -> time | None:
    text = _words_to_digits(utterance)
    found = _find_time(text)
    if found is not None:
        return found[0]
    if now is not None:
        relative = _relative(text, _local_now(now, tz))
        if relative is not None:
            return relative.time().replace(second=0, microsecond=0)
    return None


def parse_datetime(utterance: str, now: datetime, tz: str | None = None) -> datetime | None:
    local = _local_now(now, tz)
    text = _words_to_digits(utterance)
    relative = _relative(text, local)
    if relative is not None:
        return relative.replace(second=0, microsecond=0)
    clock = _find_time(text)
    if clock is None:
        return None
    found = _find_date(text, local.date(), _day_first(tz))
    if found is not None:
        day = found[0]
    else:
        day = local.date()
        if datetime.combine(day, clock[0]) <= local.replace(tzinfo=None):
            day += timedelta(days=1)
    return datetime.combine(day, clock[0], tzinfo=local.tzinfo)


# --------------------------------------------------------------------------- dispatch

_HINTED = (
    ("email", re.compile(r"e-?mail")),
    ("phone", re.compile(r"phone|mobile|cell|callback number|telephone")),
    # Pathways often type dates and times as strings (the editor's default type).
    ("date", re.compile(r"\bdate\b|_date\b|yyyy-mm-dd")),
    ("time", re.compile(r"\btime\b|_time\b|hh:mm")),
    ("name", re.compile(r"\bname\b|first_?name|last_?name|full_?name|_name\b")),
)


def _region(hint: str | None) -> str:
    for code in re.findall(r"\b[A-Z]{2}\b", hint or ""):
        if code in phonenumbers.SUPPORTED_REGIONS:
            return str(code)
    return "US"


def extract_value(
    type: str, utterance: str, *, now: datetime, tz: str | None = None, hint: str | None = None
) -> Any | None:
    """One value of ``type`` from ``utterance`` (see the module docs), or ``None``.

    ``hint`` is the variable's name and description; for ``string`` variables it
    selects a stricter reader ("email", "phone", "name" in the hint), and a two-letter
    region code in it sets the phone region."""
    kind = type.strip().lower()
    text = utterance.strip()
    if not text:
        return None
    if kind in ("integer", "int"):
        return parse_integer(text)
    if kind in ("number", "float", "decimal", "double"):
        return parse_number(text)
    if kind in ("boolean", "bool"):
        return parse_yes_no(text)
    if kind == "date":
        found_date = parse_date(text, now, tz)
        return found_date.isoformat() if found_date is not None else None
    if kind == "time":
        found_time = parse_time(text, now, tz)
        return found_time.strftime("%H:%M") if found_time is not None else None
    if kind == "datetime":
        found_dt = parse_datetime(text, now, tz)
        return found_dt.isoformat() if found_dt is not None else None
    if kind == "email":
        return parse_email(text)
    if kind in ("phone", "phone_number"):
        return parse_phone(text, _region(hint))
    if kind == "name":
        return parse_name(text)
    if hint:
        lowered = hint.lower()
        for hinted, pattern in _HINTED:
            if pattern.search(lowered):
                return extract_value(hinted, text, now=now, tz=tz, hint=hint)
    return text.rstrip(".!? ") or None


def coerce_value(type: str, raw: Any) -> Any | None:
    """A value an LLM returned for a variable of ``type``, made the type's plain form
    (the same forms ``extract_value`` returns); ``None`` when it cannot be."""
    if raw is None:
        return None
    kind = type.strip().lower()
    if kind in ("integer", "int"):
        if isinstance(raw, bool):
            return None
        if isinstance(raw, int | float):
            return int(raw) if float(raw).is_integer() else round(raw)
        return parse_integer(str(raw))
    if kind in ("number", "float", "decimal", "double"):
        if isinstance(raw, bool):
            return None
        if isinstance(raw, int | float):
            return raw
        return parse_number(str(raw))
    if kind in ("boolean", "bool"):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int | float):
            return bool(raw)
        lowered = str(raw).strip().lower()
        if lowered in ("true", "t", "1"):
            return True
        if lowered in ("false", "f", "0"):
            return False
        return parse_yes_no(lowered)
    text = str(raw).strip()
    if not text or text.lower() in ("null", "none", "unknown", "n/a"):
        return None
    if kind == "date":
        try:
            return date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            return None
    if kind == "time":
        match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::\d{2})?", text)
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            return f"{int(match.group(1)):02d}:{match.group(2)}"
        found_time = parse_time(text)
        return found_time.strftime("%H:%M") if found_time is not None else None
    if kind == "datetime":
        try:
            return datetime.fromisoformat(text).isoformat()
        except ValueError:
            return None
    if kind == "email":
        return parse_email(text)
    if kind in ("phone", "phone_number"):
        return parse_phone(text)
    return text
