"""Encryption of secrets at rest (webhook signing secrets now, the secrets API later).

The key comes from ``CALLWRIGHT_SECRET_KEY`` (one or more Fernet keys, comma-separated:
the first encrypts, all decrypt, so a key can be rotated without losing old rows), or
else from ``<data_dir>/secret-key``, generated on first start with mode 0600.

Several processes on one PostgreSQL must share the key: set ``CALLWRIGHT_SECRET_KEY``
on every host (a generated file only exists on the host that made it).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from callwright.config import Settings

KEY_FILE = "secret-key"


class SecretKeyError(RuntimeError):
    """The configured key is unusable, or a stored secret was sealed with another key."""


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretKeyError("no secret key")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except ValueError:
            raise SecretKeyError(
                "CALLWRIGHT_SECRET_KEY must be Fernet keys (32 url-safe base64-encoded bytes), "
                "comma-separated; make one with: python -c 'from cryptography.fernet import "
                "Fernet; print(Fernet.generate_key().decode())'"
            ) from None

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "a stored secret cannot be decrypted with the configured key "
                "(was CALLWRIGHT_SECRET_KEY or <data_dir>/secret-key changed?)"
            ) from None


def box_for(settings: Settings, *, create: bool = True) -> SecretBox:
    """Blocking (reads or writes the key file): from async code use ``asyncio.to_thread``."""
    if settings.secret_key is not None:
        raw = settings.secret_key.get_secret_value()
        return SecretBox([part.strip().encode() for part in raw.split(",") if part.strip()])
    path = settings.data_dir / KEY_FILE
    if create and not path.exists():
        _create_key_file(path)
    try:
        return SecretBox([path.read_bytes().strip()])
    except FileNotFoundError:
        raise SecretKeyError(f"{path} does not exist; start the server once") from None


def _create_key_file(path: Path) -> None:
    # Write aside, then link into place: two processes starting at once agree on one key,
    # and nobody ever reads a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(staging, path)
    finally:
        staging.unlink(missing_ok=True)
