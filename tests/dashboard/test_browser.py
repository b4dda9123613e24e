"""End to end in a real headless Chromium (Debian's, driven by Playwright): log in to the
dashboard `swarmsync up` started, submit a job with an uploaded input file, see it complete,
download its output.
A screenshot of each page is kept under test-artifacts/dashboard/."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from swarmsync.settings import get_settings
from tests.conftest import ARTIFACTS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ARTIFACTS / "dashboard"
FAILED = ARTIFACTS / "dashboard-failed"  # the page, its HTML and the browser's console when the test fails
INPUT = b"from an uploaded file\n"


@pytest.fixture
def browser_page(stack):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.fail("Debian's chromium is missing: run infra/host-setup.sh (apt-get install chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(90_000)
        page.console = []  # what the browser said: console messages, failed requests, HTTP errors
        page.on("console", lambda message: page.console.append(f"{message.type}: {message.text}"))
        page.on("requestfailed", lambda req: page.console.append(f"failed: {req.method} {req.url} {req.failure}"))
        page.on("response", lambda res: res.status >= 400 and page.console.append(f"HTTP {res.status} {res.url}"))
        yield page
        context.close()
        browser.close()


@contextmanager
def evidence_on_failure(page) -> Iterator[None]:
    """On a failure, keep the page (screenshot, HTML) and print what it showed, the browser's
    console and the dashboard's log: CI keeps only the test output."""
    try:
        yield
    except BaseException:
        FAILED.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(FAILED / "page.png"), full_page=True)
        (FAILED / "page.html").write_text(page.content())
        print("---- page text ----\n" + page.locator("body").inner_text()[:4000])
        print("---- browser console ----\n" + "\n".join(page.console[-60:]))
        log = get_settings().home_dir / "logs" / "dashboard.log"
        if log.exists():
            print("---- dashboard log (end) ----\n" + log.read_text(errors="replace")[-4000:])
        raise


def settle(page) -> None:
    """Until the script run that the last input started has finished, as Streamlit's own e2e tests
    wait (`wait_for_app_run`): first give that run time to begin (the app reports "notRunning"
    from the previous run until it does), then wait for the app to be connected and not running."""
    page.wait_for_timeout(210)
    page.locator('[data-testid="stApp"][data-test-connection-state="CONNECTED"]').wait_for(state="attached")
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(state="attached")


def upload(page, name: str, data: bytes) -> None:
    """As a user does (and Streamlit's own e2e tests): click the drop zone, choose the file, and
    wait until the browser has sent it to the dashboard and the run it starts has finished."""
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("stFileUploaderDropzone").click()
    with page.expect_request("**/_stcore/upload_file/**"):
        chooser.value.set_files(files=[{"name": name, "mimeType": "text/plain", "buffer": data}])
    settle(page)


def fill(page, label: str, value: str) -> None:
    """Type into a field and leave it (Tab): Streamlit takes a text field's value when it loses focus."""
    page.get_by_role("textbox", name=label, exact=True).fill(value)
    page.keyboard.press("Tab")
    settle(page)


def browser_log_in(page, account) -> None:
    """Open the dashboard and log in as `account` through its form, until the sidebar names them."""
    page.goto(f"http://127.0.0.1:{get_settings().dashboard_port}")
    fill(page, "User name", account.username)
    fill(page, "Password", account.password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text(f"{account.username} · {account.role}").wait_for()


def shot(page, name: str) -> None:
    """A full-page screenshot once the script run has finished (Streamlit renders progressively)."""
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")
    page.wait_for_timeout(500)  # let the last elements paint (not an assertion)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def go(page, title: str, heading: str, shows: str) -> None:
    """Through the sidebar (a new page load would be a new, logged-out session), until `shows` is shown."""
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=heading).first.wait_for()
    page.get_by_text(shows).first.wait_for()


def test_log_in_submit_a_job_see_it_complete_and_download_its_output(browser_page, make_user, busybox,
                                                                       no_leftover_containers):
    page = browser_page
    settings = get_settings()
    base = f"http://127.0.0.1:{settings.dashboard_port}"
    admin = make_user("admin")

    with evidence_on_failure(page):
        page.goto(base)
        fill(page, "User name", admin.username)
        fill(page, "Password", admin.password)
        shot(page, "01-login")
        page.get_by_role("button", name="Log in").click()
        page.get_by_text(f"{admin.username} · admin").wait_for()
        assert admin.password not in page.url and "sss_" not in page.url

        go(page, "Submit", "Submit a job", "Submit job")
        fill(page, "Image", busybox)
        # still running when its page opens: the result must appear without any click (the page refreshes itself)
        fill(page, "Command", "sleep 15; echo hello from chromium; seq 1 3; cat /in/hello.txt")
        fill(page, "Tags (comma separated)", "browser")
        upload(page, "hello.txt", INPUT)
        page.get_by_text(hashlib.sha256(INPUT).hexdigest()).wait_for()  # shown once uploaded
        settle(page)
        shot(page, "03-submit")
        page.get_by_role("button", name="Submit job").click()
        page.get_by_text("Submitted job").wait_for()
        job_id = page.get_by_text("Submitted job").inner_text().split()[-1]
        page.get_by_role("button", name="Open the job").click()

        page.get_by_role("heading", name=f"Job {job_id}").wait_for()
        settle(page)
        download_button = page.get_by_role("button", name="Download output.txt")
        assert download_button.count() == 0, "the job sleeps 15 s: it cannot have ended yet"
        page.get_by_text("Not archived yet").wait_for()
        download_button.wait_for(timeout=180_000)  # no input from here: the page refreshes itself until the job ends
        page.locator('[data-testid="stMetricValue"]', has_text="COMPLETED").wait_for()  # the final state
        shot(page, "05-job")
        with page.expect_download() as download_info:
            download_button.click()
        downloaded = download_info.value.path().read_bytes()
        archived = (settings.archive_dir / job_id / "output.txt").read_bytes()
        assert downloaded == archived
        assert b"hello from chromium\n1\n2\n3\n" + INPUT == downloaded  # the uploaded file, read in the container

        for number, (path, heading, shows) in enumerate(
            [("Overview", "Overview", "Success rate"), ("Jobs", "Jobs", "Open a job"), ("Workers", "Workers", "Queues"),
             ("Admin", "Admin", "Audit log"), ("Settings", "Settings", "Dashboard options")], start=6,
        ):
            go(page, path, heading, shows)
            shot(page, f"{number:02d}-{path.lower()}")
        assert sorted(p.name for p in SHOTS.glob("[0-9][0-9]-*.png")) == [  # other tests leave their shots beside
            "01-login.png", "03-submit.png", "05-job.png", "06-overview.png", "07-jobs.png", "08-workers.png",
            "09-admin.png", "10-settings.png",
        ]
