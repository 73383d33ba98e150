"""Helpers for the status page tests: a logged-in Flask test client, a headless Chromium."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,1000",
)


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    if not match:
        raise AssertionError("no CSRF token in the page")
    return match.group(1)


def login(client: Any, password: str) -> str:
    """Log the test client in; returns the session's CSRF token."""
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"password": password, "csrf_token": csrf_from(page)})
    assert response.status_code == 302, response.get_data(as_text=True)
    with client.session_transaction() as session:
        return session["csrf"]


def chromium_driver(workdir: Path) -> Any:
    """Selenium driving Debian's chromium through its chromedriver (selenium-manager never runs).

    ``workdir`` (a temp dir) gets the empty profile and the driver's log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=workdir)
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(str(CHROMEDRIVER), log_output=str(workdir / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    return driver
