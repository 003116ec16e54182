"""The report printed to PDF by Debian's headless Chromium (``--print-to-pdf``).

The page's print CSS keeps headings with what follows and tables whole; Chromium lays it out
exactly as a reader's browser would. Without Chromium, :class:`PDFUnavailable` says so.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from qaflow.errors import QAFlowError

_CANDIDATES: Final = ("chromium", "chromium-browser", "/usr/bin/chromium")
_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--no-pdf-header-footer",
)


class PDFUnavailable(QAFlowError, RuntimeError):
    """The PDF cannot be printed: no Chromium here, or Chromium failed."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"cannot print the report to PDF: {problem}")


def find_chromium() -> str | None:
    """The Chromium binary on this machine, or ``None``."""
    for candidate in _CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def html_to_pdf(
    page: str, target: Path, *, chromium: str | None = None, timeout: float = 120.0
) -> None:
    """Print the HTML text ``page`` to the PDF file ``target`` with headless Chromium
    (``chromium`` names the binary; by default the one found on this machine)."""
    binary = find_chromium() if chromium is None else shutil.which(chromium)
    if binary is None:
        raise PDFUnavailable("Chromium is not installed (Debian package 'chromium')")
    with tempfile.TemporaryDirectory(prefix="qaflow-pdf-") as work:
        source = Path(work) / "report.html"
        source.write_text(page, encoding="utf-8")
        out = Path(work) / "report.pdf"
        try:
            done = subprocess.run(
                [
                    binary,
                    *_FLAGS,
                    f"--user-data-dir={Path(work) / 'profile'}",
                    f"--print-to-pdf={out}",
                    source.resolve().as_uri(),
                ],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise PDFUnavailable(f"Chromium did not run ({type(error).__name__})") from None
        if done.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            raise PDFUnavailable(f"Chromium exited with status {done.returncode}")
        shutil.copyfile(out, target)
