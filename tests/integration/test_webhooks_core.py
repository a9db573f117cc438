"""The pure parts of webhooks: retry schedule, signatures, live-event kinds; and the
at-rest encryption of secrets (a key file on disk)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright.config import Settings
from callwright.store import crypto
from callwright.store.models import CallEvent
from callwright.store.webhook_outbox import live_kind
from callwright.webhooks import signing
from callwright.webhooks.retry import RetryPolicy, Step, after_attempt


def test_default_schedule_spreads_eight_attempts_over_about_a_day() -> None:
    policy = RetryPolicy()
    gaps = [policy.delay(n, 0.5) for n in range(1, policy.max_attempts)]
    assert gaps[0] == 80.0 and all(b == a * 3 for a, b in zip(gaps, gaps[1:], strict=False))
    assert 20 * 3600 < sum(gaps) < 28 * 3600


@settings(max_examples=300, deadline=None)
@given(retry=st.integers(1, 40), draw=st.floats(0, 1, exclude_max=True))
def test_delays_are_jittered_within_a_fifth_and_capped(retry: int, draw: float) -> None:
    policy = RetryPolicy(base_seconds=2.0, max_delay_seconds=600.0)
    plain = min(2.0 * 3 ** (retry - 1), 600.0)
    assert plain * 0.8 <= policy.delay(retry, draw) < plain * 1.2 + 1e-9


def test_after_attempt() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=10)
    assert after_attempt(policy, 1, delivered=True, final=False, draw=0) == Step("delivered")
    assert after_attempt(policy, 1, delivered=False, final=True, draw=0) == Step("dead")
    assert after_attempt(policy, 1, delivered=False, final=False, draw=0.5) == Step("pending", 10)
    assert after_attempt(policy, 2, delivered=False, final=False, draw=0.5) == Step("pending", 30)
    assert after_attempt(policy, 3, delivered=False, final=False, draw=0.5) == Step("dead")
    assert after_attempt(policy, 3, delivered=True, final=False, draw=0.5) == Step("delivered")


def test_signature_is_hex_hmac_sha256_of_the_raw_body() -> None:
    body = b"The quick brown fox jumps over the lazy dog"
    expected = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert signing.sign(body, "key") == expected
    assert signing.verify(body, "key", expected)
    assert signing.verify(body, "key", f"sha256={expected.upper()}\n")
    assert not signing.verify(body, "key2", expected)
    assert not signing.verify(body + b".", "key", expected)
    assert not signing.verify(body, "key", "")
    headers = signing.delivery_headers(body, "key", "d-1", 1700000000)
    assert headers == {
        "Content-Type": "application/json",
        "X-Webhook-Signature": expected,
        "X-Webhook-Id": "d-1",
        "X-Webhook-Timestamp": "1700000000",
    }


@pytest.mark.parametrize(
    ("type_", "level", "category", "kind"),
    [
        ("queue.accepted", "queue", "info", "queue"),
        ("status.in-progress", "call", "info", "call"),
        ("status.failed", "call", "error", "call"),
        ("llm.latency", "call", "performance", "latency"),
        ("tool.invoke", "call", "info", "tool"),
        ("webhook.result", "call", "info", "webhook"),
        ("dynamic_data.stored", "call", "info", "dynamic_data"),
        ("delivery.refused", "call", "error", None),
        ("delivery.dead", "call", "error", None),
    ],
)
def test_live_event_kinds(type_: str, level: str, category: str, kind: str | None) -> None:
    event = CallEvent(type=type_, level=level, category=category, message="m")
    assert live_kind(event) == kind


def test_key_file_is_made_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(crypto.SecretKeyError, match="does not exist"):
        crypto.box_for(settings, create=False)
    sealed = crypto.box_for(settings).seal("whsec_x")
    key_file = tmp_path / "data" / crypto.KEY_FILE
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert crypto.box_for(settings).open(sealed) == "whsec_x"
    assert "whsec_x" not in sealed
    assert [p.name for p in key_file.parent.iterdir()] == [crypto.KEY_FILE]


def test_configured_keys_rotate_and_a_wrong_key_says_so(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = crypto.box_for(Settings(data_dir=tmp_path, secret_key=old)).seal("s")
    rotated = crypto.box_for(Settings(data_dir=tmp_path, secret_key=f"{new}, {old}"))
    assert rotated.open(sealed) == "s"
    assert crypto.box_for(Settings(data_dir=tmp_path, secret_key=new)).open(rotated.seal("t"))
    with pytest.raises(crypto.SecretKeyError, match="cannot be decrypted"):
        crypto.box_for(Settings(data_dir=tmp_path, secret_key=new)).open(sealed)
    with pytest.raises(crypto.SecretKeyError, match="Fernet"):
        crypto.box_for(Settings(data_dir=tmp_path, secret_key="not-a-key"))
    assert not (tmp_path / crypto.KEY_FILE).exists()
