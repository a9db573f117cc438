"""Where call recordings live.

``RecordingStore`` is the seam for other back-ends (an S3-compatible bucket later);
``LocalRecordingStore`` keeps WAV files under ``<data_dir>/recordings/<org>/<call>.wav``.
Its methods block (file I/O): async callers use ``asyncio.to_thread``.

Rules:
1. The path is built from ids the store generated (UUIDs), never from user input, and
   is checked to stay inside the recordings folder anyway.
2. A recording is written to a temporary name and renamed into place, so a reader never
   sees half a file and a crash leaves no partial recording behind a real name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

CONTENT_TYPE = "audio/wav"


class RecordingStore(Protocol):
    def save(self, org_id: str, call_id: str, wav: bytes) -> None: ...

    def path(self, org_id: str, call_id: str) -> Path | None:
        """The local file to stream, or None if there is no recording."""
        ...

    def delete(self, org_id: str, call_id: str) -> bool: ...


class LocalRecordingStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _file(self, org_id: str, call_id: str) -> Path:
        path = (self.root / org_id / f"{call_id}.wav").resolve()
        if self.root not in path.parents:
            raise ValueError("recording path escapes the recordings folder")
        return path

    def save(self, org_id: str, call_id: str, wav: bytes) -> None:
        final = self._file(org_id, call_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.with_name(f".{final.name}.{os.getpid()}")
        with open(staging, "wb") as fh:
            fh.write(wav)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(staging, final)

    def path(self, org_id: str, call_id: str) -> Path | None:
        path = self._file(org_id, call_id)
        return path if path.is_file() else None

    def delete(self, org_id: str, call_id: str) -> bool:
        path = self._file(org_id, call_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True


def local_store(data_dir: Path) -> LocalRecordingStore:
    return LocalRecordingStore(data_dir / "recordings")
