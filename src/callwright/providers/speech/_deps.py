"""Importing the optional packages the embedded back-ends need, with a clear error."""

from __future__ import annotations

import importlib
from types import ModuleType

from callwright.providers.speech.base import SpeechUnavailable


def require(module: str, distribution: str, purpose: str) -> ModuleType:
    """``import module``, or ``SpeechUnavailable`` naming the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SpeechUnavailable(
            f"{purpose} needs the package {distribution!r} (pip install {distribution})"
        ) from exc
