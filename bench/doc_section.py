"""Each benchmark's section of ``docs/benchmarks.md``: a script replaces only the text
between its own ``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->`` markers,
or appends its section when the file has none yet (creating the file if need be)."""

from __future__ import annotations

from pathlib import Path

PREAMBLE = (
    "# Benchmarks\n\nOne `##` section per benchmark, each written by its script "
    "between its own `<!-- bench:NAME:start/end -->` markers (a script replaces "
    "only its own section). Every run holds `flock /tmp/cw-bench.lock`.\n"
)


def replace_section(current: str, start: str, end: str, text: str) -> str:
    """``current`` with ``text`` (markers included) in place of its section."""
    if start in current and end in current:
        head, rest = current.split(start, 1)
        return head + text + rest.split(end, 1)[1]
    return current.rstrip("\n") + "\n\n" + text + "\n"


def write_section(doc: Path, start: str, end: str, text: str) -> None:
    current = doc.read_text() if doc.exists() else PREAMBLE
    doc.write_text(replace_section(current, start, end, text))
