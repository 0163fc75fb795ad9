"""docs/reliability.md is written in sections, one per suite (fuzz, faults), each replaced whole
by the suite's last full run."""

from __future__ import annotations

import re
from pathlib import Path

INTRO = """# Reliability

What dampak does with what goes wrong, measured on the real broker and chDB. Every row gives the
command that reproduces it.
"""


def write_section(path: Path, name: str, lines: list[str]) -> None:
    """Replace (or add) the section ``name`` of ``path`` with ``lines``."""
    section = "\n".join([f"<!-- {name}:begin -->", *lines, f"<!-- {name}:end -->"])
    text = path.read_text() if path.exists() else INTRO
    pattern = rf"<!-- {name}:begin -->.*<!-- {name}:end -->"
    if re.search(pattern, text, flags=re.S):
        text = re.sub(pattern, lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
