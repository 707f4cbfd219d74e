"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = Path(__file__).resolve().parent / "data"
REQUIRE_BROWSER = "TRADEBOT_REQUIRE_BROWSER"


def shared_data_dir() -> Path:
    """The recorded CME sample data shipped with the tests (``tests/data``, see its MANIFEST);
    ``TRADEBOT_TEST_DATA`` points the tests at another copy laid out the same way."""
    override = os.environ.get("TRADEBOT_TEST_DATA")
    return Path(override) if override else SAMPLE_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "MANIFEST.md").exists():
        pytest.fail(f"sample data not found at {path} (tests/data, or TRADEBOT_TEST_DATA)")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


class BrowserRequirement:
    """What the browser tests need. A missing piece skips the test on a developer's machine and
    fails it when ``TRADEBOT_REQUIRE_BROWSER=1`` (``scripts/test.sh`` sets it when ``CI=true``)."""

    @staticmethod
    def missing(reason: str) -> NoReturn:
        if os.environ.get(REQUIRE_BROWSER) == "1":
            pytest.fail(
                f"{reason}; {REQUIRE_BROWSER}=1 (set by scripts/test.sh when CI=true) makes a "
                "missing browser a failure, not a skip",
                pytrace=False,
            )
        pytest.skip(f"{reason} (scripts/test.sh installs it)")

    def chromium(self) -> str:
        """Debian's Chromium (Playwright's own browsers are never downloaded here)."""
        for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
            if Path(candidate).exists():
                return candidate
        found = shutil.which("chromium") or shutil.which("chromium-browser")
        if found is None:
            self.missing("no Chromium (/usr/bin/chromium or on PATH): apt-get install chromium")
        return found

    def playwright(self) -> ModuleType:
        """``playwright.async_api``, which drives that Chromium."""
        try:
            import playwright.async_api as api
        except ImportError:
            self.missing("playwright is not installed: pip install -e '.[test]'")
        return api


@pytest.fixture
def require_browser() -> BrowserRequirement:
    """Call ``.chromium()`` / ``.playwright()`` in the test body, so that a missing browser is
    the test's own skip, or its failure under ``TRADEBOT_REQUIRE_BROWSER=1``."""
    return BrowserRequirement()
