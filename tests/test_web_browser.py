"""A real headless Chromium against a real ``facepro run`` on the shared clip.

It loads the dashboard, sees live fps and the charts update without a reload, logs in with
the password generated at first boot, sees the pipeline's events with their snapshots,
enrols a person from a photo upload (and the running pipeline then recognises him), creates a backup through the wizard, sees it listed and gets to the restore confirmation. Screenshots land in test-artifacts/web/ (gitignored).
"""
from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import CLIP, FACEPRO, MEDIA_DIR, MODELS_DIR, REPO, subprocess_env
from tests.support.procs import free_port, wait_for_port
from tests.support.waiting import wait_until
from tests.support.web import CHROMEDRIVER, CHROMIUM, chromium_driver

ARTIFACTS = REPO / "test-artifacts" / "web"

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="needs Debian's chromium and chromium-driver (scripts/setup_env.sh test)")


def http_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("web-e2e")
    data_dir = tmp / "data"
    port = free_port()
    settings = {
        "device": {"id": "e2e-device", "name": "Browser test unit"},
        "paths": {"data_dir": str(data_dir), "models_dir": str(MODELS_DIR)},
        "cameras": [{"name": "stage", "source": str(CLIP), "loop": True}],
        "mqtt": {"enabled": False},
        "backup": {"schedule": None, "targets": [{"name": "local", "type": "local", "path": str(tmp / "archives")}]},
        "web": {"host": "127.0.0.1", "port": port, "public_read": True},
    }
    settings_path = tmp / "settings.json"
    settings_path.write_text(json.dumps(settings))
    log_path = tmp / "facepro.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(FACEPRO + ["--config", str(settings_path), "run"], stdout=log,
                                stderr=subprocess.STDOUT, env=subprocess_env(), cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, timeout=60)
        deadline = time.monotonic() + 60
        while http_json(base + "/api/health")[0] != 200:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"never healthy: {http_json(base + '/api/health')}"
            time.sleep(0.3)
        yield {"base": base, "data_dir": data_dir, "proc": proc, "log": log_path, "tmp": tmp}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def browser(service: dict[str, Any]) -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver = chromium_driver(service["tmp"])
    try:
        yield driver
    finally:
        driver.quit()


def test_dashboard_live_login_and_backup_wizard(service: dict[str, Any], browser: Any) -> None:
    try:
        walk_through(service, browser)
    except Exception as exc:
        browser.save_screenshot(str(ARTIFACTS / "failure.png"))
        log_tail = "\n".join(service["log"].read_text(errors="replace").splitlines()[-40:])
        raise AssertionError(f"{exc}\n--- at {browser.current_url}; facepro log tail:\n{log_tail}") from exc


def walk_through(service: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    def find(by: str, value: str, timeout: float = 20) -> Any:
        """The element once it is there (a click's navigation finishes after click() returns)."""
        return wait_until(lambda: browser.find_elements(by, value), timeout, f"{value!r} on the page")[0]

    base = service["base"]
    browser.get(base + "/")
    assert "Browser test unit" in browser.find_element(By.TAG_NAME, "h1").text
    browser.execute_script("window.__sameDocument = true;")  # gone if the page reloads

    def fps() -> float:
        cell = browser.find_element(By.CSS_SELECTOR, 'tr[data-camera="stage"] td.fps')
        return float(cell.text)

    first_update = browser.find_element(By.ID, "updated-at").text
    wait_until(lambda: fps() > 0, what="live fps above 0 on the dashboard")
    wait_until(lambda: browser.find_element(By.ID, "updated-at").text != first_update, timeout=15,
               what="the live figures to refresh")
    assert browser.execute_script("return window.__sameDocument === true;"), "the page reloaded"
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-camera="stage"]').text.split()[1] == "online"
    assert browser.find_element(By.ID, "health").text.startswith("ok")
    # the charts: an fps line and one per pipeline stage, drawn from the monitoring history
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, 'svg[data-chart="fps"] polyline'),
               timeout=15, what="the fps chart line")
    # the stage charts come from the same history, each once its stage has two points
    wait_until(lambda: len(browser.find_elements(By.CSS_SELECTOR, 'svg[data-chart^="stage-"] polyline')) >= 3,
               timeout=15, what="three stage charts")
    browser.set_window_size(1280, 2000)
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    browser.set_window_size(390, 1400)  # a phone
    browser.save_screenshot(str(ARTIFACTS / "dashboard-phone.png"))
    browser.set_window_size(1280, 1000)

    # log in with the password generated at first boot (what the installer hands over)
    password = (service["data_dir"] / "technician-password.txt").read_text().strip()
    browser.find_element(By.ID, "login-link").click()
    find(By.ID, "password").send_keys("not the password")
    browser.find_element(By.ID, "login-submit").click()
    assert "Wrong password" in find(By.ID, "login-error").text
    find(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "login-submit").click()
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "header form button"), what="the logout button")
    assert browser.current_url.rstrip("/") == base

    # events recorded by the real pipeline, with their snapshot thumbnails actually loading
    def loaded_thumbnail() -> bool:
        browser.get(base + "/events")
        return bool(browser.execute_script(
            "return Array.from(document.querySelectorAll('img.thumb'))"
            ".some(function (img) { return img.complete && img.naturalWidth > 0; });"))

    wait_until(loaded_thumbnail, timeout=30, what="an event with a loaded snapshot thumbnail")
    assert "stage" in browser.find_element(By.ID, "events").text
    browser.save_screenshot(str(ARTIFACTS / "events.png"))

    # enrol by uploading a photo: the crop shows, and the running pipeline recognises him
    browser.get(base + "/people")
    form = find(By.ID, "enroll-form")
    form.find_element(By.NAME, "name").send_keys("Lin-Manuel Miranda")
    form.find_element(By.NAME, "photos").send_keys(str(MEDIA_DIR / "lin-manuel-miranda.png"))
    form.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
    assert "Enrolled Lin-Manuel Miranda" in find(By.CSS_SELECTOR, ".flash").text
    person = browser.find_element(By.CSS_SELECTOR, 'li[data-person="Lin-Manuel Miranda"]')
    wait_until(lambda: browser.execute_script(
        "var img = arguments[0].querySelector('img.face'); return img.complete && img.naturalWidth;", person) == 112,
        what="the enrolled face crop (112x112) to load")
    browser.save_screenshot(str(ARTIFACTS / "people.png"))

    def recognised() -> bool:
        return bool(http_json(base + "/api/events?person=Lin-Manuel%20Miranda")[1]["events"])

    wait_until(recognised, timeout=60, what="a face_recognized event for the person enrolled from the page")

    # the backup wizard: create (database + settings only), watch the progress, see it listed
    browser.get(base + "/backups")
    faces = find(By.CSS_SELECTOR, 'input[name="include"][value="faces"]')
    if faces.is_selected():
        faces.click()
    browser.find_element(By.ID, "backup-create").click()
    wait_until(lambda: browser.find_elements(By.ID, "job-finished"), timeout=60,
               what="the backup job to finish and the list to reload")
    assert "Backup finished" in browser.find_element(By.ID, "job-finished").text
    rows = browser.find_elements(By.CSS_SELECTOR, 'table[data-target="local"] tr[data-backup]')
    assert len(rows) == 1
    name = rows[0].get_attribute("data-backup")
    assert name.startswith("facepro_backup_e2e-device_") and name.endswith(".zip")
    browser.save_screenshot(str(ARTIFACTS / "backups.png"))
    on_disk = [p.name for p in (service["tmp"] / "archives").iterdir() if p.name.endswith(".zip")]
    assert on_disk == [name]

    # restore step 2: the confirmation names what will be overwritten
    rows[0].find_element(By.CSS_SELECTOR, 'input[type="radio"]').click()
    browser.find_element(By.ID, "backup-restore").click()
    warning = find(By.ID, "overwrites").text
    assert "database" in warning and str(service["data_dir"] / "facepro.db") in warning
    assert "face images" not in warning  # this archive was made without them
    browser.save_screenshot(str(ARTIFACTS / "restore-confirm.png"))
    browser.find_element(By.ID, "confirm-restore").click()
    flash = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".flash"), timeout=60, what="the restore result")
    assert f"Restored {name}" in flash[0].text, flash[0].text

    # the service is still healthy and serving events after all this
    status, body = http_json(base + "/api/health")
    assert status == 200, body
