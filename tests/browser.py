"""Debian's Chromium for Playwright (browser downloads are impossible here), and a
collector of a page's console errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")


def find_chromium() -> str:
    """``/usr/bin/chromium``, installed with apt-get when missing, as on a fresh CI machine
    (root); fails the test when it cannot be had."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium package (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "chromium"],
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(
                f"{' '.join(argv)} failed ({done.returncode}); Chromium is needed for the "
                f"browser tests:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
    if not CHROMIUM.exists():
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return str(CHROMIUM)


class ConsoleErrors:
    """Console errors and uncaught exceptions of pages served from ``origin`` (messages of
    other hosts' pages, whose requests the tests block, are left out)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.errors: list[str] = []

    def attach(self, page: Page) -> None:
        """Collect the errors of ``page`` from now on."""
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = str(message.location.get("url", ""))
        if where and not where.startswith(self.origin):
            return
        self.errors.append(f"{message.text} ({where})")
