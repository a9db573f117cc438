"""The dependency rules of design.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "callwright"

# design.md, "Parts": package -> packages it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "store": {"config"},
    "pathways": set(),
    "providers": {"config"},
    "media": set(),
    "conversation": {"pathways", "providers", "media", "store", "config"},
    "telephony": {"media", "config"},
    "dispatch": {"store", "conversation", "telephony", "config"},
    "webhooks": {"store", "config"},
    "knowledge": {"providers", "store", "config"},
    "api": {
        "config",
        "store",
        "pathways",
        "providers",
        "media",
        "conversation",
        "telephony",
        "dispatch",
        "webhooks",
        "knowledge",
    },
    "cli": {
        "config",
        "store",
        "pathways",
        "providers",
        "media",
        "conversation",
        "telephony",
        "dispatch",
        "webhooks",
        "knowledge",
        "api",
        "server",
    },
}
# Small leaf modules anyone may use: they import nothing of ours but each other.
UTILITIES = {"clock", "logs", "netguard"}
PURE = {"pathways", "media"}
COMPOSITION_ROOT = "server"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "callwright" and len(parts) > 1:
                found.add(parts[1])
    return found


def owner(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def test_packages_import_only_what_design_allows() -> None:
    broken = []
    for path in sorted(SRC.rglob("*.py")):
        pkg = owner(path)
        if pkg in ("__init__", COMPOSITION_ROOT):
            continue
        allowed = ALLOWED.get(pkg, set()) | {pkg}
        if pkg in UTILITIES:
            allowed = UTILITIES
        elif pkg not in ALLOWED:
            broken.append(f"{path.relative_to(SRC)}: package {pkg!r} is not in design.md")
            continue
        allowed = allowed | UTILITIES
        for target in imports_of(path) - allowed - {"__version__"}:
            broken.append(f"{path.relative_to(SRC)} imports callwright.{target}")
    assert not broken, "\n".join(broken)


def test_nothing_imports_cli_or_the_composition_root() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if owner(path) not in ("cli", COMPOSITION_ROOT)
        and {"cli", COMPOSITION_ROOT} & imports_of(path)
    ]
    assert not offenders


def test_pure_cores_do_no_io() -> None:
    forbidden = {"socket", "asyncio", "httpx", "sqlalchemy", "requests", "urllib", "aiohttp"}
    offenders = []
    for pkg in PURE:
        for path in (SRC / pkg).rglob("*.py") if (SRC / pkg).exists() else []:
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name.split(".")[0] for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module.split(".")[0]]
                offenders += [f"{path.relative_to(SRC)}: {n}" for n in names if n in forbidden]
    assert not offenders, offenders
