"""The receiver snippet in docs/webhooks.md works as printed, and agrees with the
signatures callwright sends and with ``callwright webhooks verify``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from callwright.webhooks import signing

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_documented_receiver_check_works() -> None:
    namespace: dict[str, object] = {}
    exec(snippet(), namespace)  # the documented code, exactly as printed
    check = namespace["is_from_callwright"]
    assert callable(check)
    assert len(snippet().strip().splitlines()) <= 12
    body, secret = b'{"call_id":"c1","status":"completed"}', "whsec_test"
    header = signing.sign(body, secret)
    assert check(body, header, secret)
    assert check(body, "sha256=" + header, secret)
    assert not check(body + b" ", header, secret)
    assert not check(body, header, "other")


def test_the_cli_verifies_from_stdin() -> None:
    body, secret = b'{"call_id":"c2"}', "whsec_cli"
    good = signing.sign(body, secret)

    def run(signature: str) -> int:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "callwright.cli.main",
                "webhooks",
                "verify",
                "--secret",
                secret,
                "--signature",
                signature,
            ],
            input=body,
            capture_output=True,
            timeout=60,
            check=False,
        ).returncode

    assert run(good) == 0
    assert run(good[:-1] + ("0" if good[-1] != "0" else "1")) == 1
