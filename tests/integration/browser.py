"""Headless Chromium (Debian's ``chromium`` package) for the command-center page: the DOM after
the page's script ran, the console messages it printed, screenshots, and the page printed to PDF
(A4 by the page's ``@page`` rule).

    python -m tests.integration.browser URL --screenshot docs/command-center.png
    python -m tests.integration.browser FILE_URL --pdf docs/command-center.pdf
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# No network beyond the page: without these Chromium reaches out to Google at every start.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=8000",
]  # fmt: skip
_CONSOLE = re.compile(r":(?:INFO|WARNING|ERROR):CONSOLE[:(]\d+\)?\] (.*)$")


def _run(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        raise FileNotFoundError("chromium is not installed (make test installs Debian's package)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip


def dump(url: str) -> tuple[str, list[str]]:
    """The DOM once the page's script ran, and every console message (errors included)."""
    proc = _run(url, "--enable-logging=stderr", "--log-level=0", "--v=0", "--dump-dom")
    console = [m.group(1) for line in proc.stderr.splitlines() if (m := _CONSOLE.search(line))]
    return proc.stdout, console


def screenshot(url: str, out: Path, width: int = 1280, height: int = 1500) -> Path:
    _run(url, f"--window-size={width},{height}", f"--screenshot={out.resolve()}")
    return out


def pdf(url: str, out: Path) -> bytes:
    """The page printed to PDF as Chromium prints it (no header or footer), and its bytes."""
    _run(url, "--no-pdf-header-footer", f"--print-to-pdf={out.resolve()}")
    return out.read_bytes()


def pdf_pages(document: bytes) -> list[tuple[float, float]]:
    """Width and height in points of each page of a PDF Chromium wrote (its page objects are not
    compressed; ``pdfinfo`` may be missing)."""
    boxes = re.findall(
        rb"/Type\s*/Page\b.*?/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", document, re.S
    )
    return [(float(x1) - float(x0), float(y1) - float(y0)) for x0, y0, x1, y1 in boxes]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--screenshot", type=Path)
    out.add_argument("--pdf", type=Path)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args()
    if args.pdf is not None:
        pdf(args.url, args.pdf)
        print(args.pdf)
    else:
        print(screenshot(args.url, args.screenshot, height=args.height))


if __name__ == "__main__":
    main()
