"""The operator console (spec §7.4) in a real headless browser (Debian's chromium, driven by Selenium
through Debian's chromedriver; nothing is downloaded) against the real mesh: a few orders, one of them
dead-lettered by a tax with a bug. The operator signs in, finds an order, opens its timeline, looks at the
enterprises, lists the dead letters and replays one (after the fix), and opens the charts. Every page is
saved as a screenshot (`.run/screenshots/console/`, or SW_SCREENSHOT_DIR), and the test fails if any page
logs a browser console error (level SEVERE: a script error, a refused Content-Security-Policy, a missing
file)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from contracts.identifiers import mask_id_number
from deploy.mesh import ROOT
from tests.e2e.conftest import ADMIN, released_order_no
from tests.e2e.test_customs import one_item
from tests.support import wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("SW_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SW_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(os.environ.get("SW_SCREENSHOT_DIR", ROOT / ".run" / "screenshots" / "console"))


@pytest.fixture(scope="module")
def browser():
    """Headless chromium. Missing: the test fails (it does not skip) and says what to install."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).exists() or shutil.which(p))]
    if missing:
        pytest.fail(f"the console's browser test needs Debian's chromium and chromedriver ({', '.join(missing)} "
                    "not found): apt-get install -y chromium chromium-driver (or set SW_CHROMIUM / SW_CHROMEDRIVER)",
                    pytrace=False)
    try:
        from selenium import webdriver  # noqa: PLC0415 - the test extra
    except ImportError:
        pytest.fail("the console's browser test needs selenium: make install (the test extra)", pytrace=False)

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1100", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


class Console:
    """The browser on the console: each page checked for console errors and saved as a screenshot."""

    def __init__(self, driver, base: str):  # noqa: ANN001
        self.driver, self.base = driver, base
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob("*.png"):  # this run's pages only
            old.unlink()
        self.shots: list[Path] = []

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str, timeout: float = 30):  # noqa: ANN201
        from selenium.webdriver.common.by import By  # noqa: PLC0415
        from selenium.webdriver.support import expected_conditions as ec  # noqa: PLC0415
        from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

        return WebDriverWait(self.driver, timeout).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def until(self, condition, timeout: float = 60, what: str = "the page"):  # noqa: ANN001, ANN201
        from selenium.common.exceptions import StaleElementReferenceException  # noqa: PLC0415
        from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

        # htmx swaps parts of the page while we look: an element gone stale is looked for again
        return WebDriverWait(self.driver, timeout, poll_frequency=0.5,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition, message=what)

    def checked(self, name: str) -> None:
        """Saves the page as `name`.png and fails on any console error it logged since the last check."""
        shot = SCREENSHOTS / f"{len(self.shots) + 1:02d}-{name}.png"
        assert self.driver.save_screenshot(str(shot)), shot
        self.shots.append(shot)
        errors = [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, f"console errors on {name} ({self.driver.current_url}): {errors}"


def tax_dead_letters(mesh) -> list[dict]:  # noqa: ANN001
    r = httpx.get(mesh.url("tax") + "/v1/dead-letters", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["dead_letters"]


def test_the_operator_finds_an_order_reads_its_timeline_replays_a_dead_letter_and_watches_the_charts(
        api, mesh, parties, browser):
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.ui import Select  # noqa: PLC0415

    platform = parties.platform.code
    order_no, bug = released_order_no(platform, "CON"), released_order_no(platform, "BUG")
    # a tax with a bug dead-letters the decision on `bug`; then tax is restarted without it (the fix)
    mesh.stop_service("tax")
    mesh.start_service("tax", app="tests.doubles.faulty_tax:app")
    try:
        mesh.wait_healthy(["tax"])
        body = api.submit_import(parties, order_no)
        api.submit_import(parties, bug)
        # over the single-transaction limit of 5,000 CNY: rejected, with its reason
        rejected = api.submit_import(parties, released_order_no(platform, "REJ"), freight="0.00", discount="0.00",
                                     tax_total="0.00", items=one_item("4202210090", "2000.00", 3, "Handbags"))
        assert api.wait_view(parties.platform, order_no, "tax")["customs"]["status"] == "released"
        assert api.wait_customs(parties.platform, rejected["order_no"])["customs"]["status"] == "rejected"
        [letter] = wait_for(lambda: [d for d in tax_dead_letters(mesh) if d["key"] == f"{platform}:{bug}"], 60,
                            what="tax's dead letter")
    finally:
        mesh.stop_service("tax")
        mesh.start_service("tax")
        mesh.wait_healthy(["tax"])
    assert api.status(parties.platform, bug)["tax"]["status"] == "pending"

    console = Console(browser, mesh.url("gateway"))
    # signing in: the console sends an unknown visitor to the sign-in page, and back after
    console.open("/console/enterprises")
    console.find("#token")
    assert "/console/sign-in?next=" in browser.current_url
    console.checked("sign-in")
    browser.find_element(By.ID, "token").send_keys("not the token")
    browser.find_element(By.CSS_SELECTOR, "form.sign-in button").click()
    assert "That is not the operator token." in console.find("#sign-in-error").text
    # the refused sign-in is answered 401, which chromium logs as a failed load of the page itself: that, and
    # nothing else, is allowed here
    unexpected = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
                  and not ("/console/sign-in" in e["message"] and "401" in e["message"])]
    assert not unexpected, unexpected
    browser.find_element(By.ID, "token").send_keys(ADMIN)
    browser.find_element(By.CSS_SELECTOR, "form.sign-in button").click()
    console.find("h1")
    assert browser.current_url.endswith("/console/enterprises")
    cookie = browser.get_cookie("sw_console")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # finding an order by its number (htmx puts the results in place), then by the buyer's masked id
    console.open("/console")
    Select(console.find("#by")).select_by_value("order_no")
    browser.find_element(By.ID, "q").send_keys(order_no)
    browser.find_element(By.CSS_SELECTOR, "form.search button").click()
    link = console.find(f"#results a[href='/console/orders/{platform}/{order_no}']")
    assert f"q={order_no}" in browser.current_url  # the search is in the address bar (hx-push-url)
    assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1  # htmx put the results in place, not a page in a page
    # nothing of the operator's data or session is left where a script or the next user could read it
    assert browser.execute_script("return window.sessionStorage.getItem('htmx-history-cache')") is None
    assert browser.execute_script("return window.localStorage.length") == 0
    assert "sw_console" not in browser.execute_script("return document.cookie")
    console.checked("orders-found")
    console.open(f"/console?by=buyer&q={mask_id_number(body['buyer']['id_number'])}")
    assert console.find(f"#results a[href='/console/orders/{platform}/{order_no}']")
    console.open(f"/console?by=platform&q={platform}")
    console.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tbody tr")) == 3, what="3 orders")
    assert "rejected" in browser.find_element(By.ID, "results").text
    console.checked("orders-of-a-platform")

    # its one-stop view and timeline across every agency, with customs' decision and the tax assessment
    console.find(f"#results a[href='/console/orders/{platform}/{order_no}']").click()
    console.find("#timeline")
    timeline = browser.find_element(By.CSS_SELECTOR, "table.timeline").text
    for event in ("order.received", "customs.decision", "tax.assessment"):
        assert event in timeline, (event, timeline)
    assert "released" in browser.find_element(By.ID, "agency-customs").find_element(By.XPATH, "..").text
    console.checked("order-timeline")
    del link

    # a rejection, with customs' reason in the timeline and in the one-stop view
    console.open(f"/console/orders/{platform}/{rejected['order_no']}")
    console.find("#timeline")
    assert "rejected: OVER_SINGLE_LIMIT" in browser.find_element(By.CSS_SELECTOR, "table.timeline").text
    customs_view = browser.find_element(By.ID, "agency-customs").find_element(By.XPATH, "..").text
    assert "rejected" in customs_view and "OVER_SINGLE_LIMIT" in customs_view, customs_view
    console.checked("order-rejected")

    # enterprises as every agency sees them
    console.open(f"/console/enterprises?q={parties.ecommerce.code}")
    section = console.find("section.enterprise")
    for agency in ("registration", "customs", "tax", "fx", "credit"):
        assert agency in section.text.lower(), agency
    console.checked("enterprises")

    # dead letters of every service, and the replay of tax's after the fix
    console.open("/console/dead-letters")
    console.until(lambda d: all(s.get_attribute("data-loaded") for s in d.find_elements(By.CSS_SELECTOR,
                  "section.dead-letters")), what="every service's dead letters")
    row = console.find(f"#dl-tax button[aria-label='Replay {letter['id']}']")
    assert "RuntimeError: a bug in tax" in browser.find_element(By.ID, "dl-tax").text
    console.checked("dead-letters")
    row.click()
    result = console.find("#dl-tax p.ok", timeout=90)
    assert f"Replayed 1: {letter['id']} (handled)" in result.text
    console.checked("dead-letter-replayed")
    assert api.wait_view(parties.platform, bug, "tax")["tax"]["status"] == "assessed"

    # the charts: two samples make the first rates; consumer lag is shown, or said not to be reported
    console.open("/console/charts")
    samples = lambda d: int(d.find_element(By.ID, "charts").get_attribute("data-samples") or 0)  # noqa: E731
    console.until(lambda d: samples(d) >= 1, timeout=30, what="a first sample of every service's metrics")
    for _ in range(2):  # traffic while the page watches: customs' consumption rate rises above 0
        api.submit_import(parties, released_order_no(platform, "CHART"))
    customs = "#latest-table tr[data-service='customs'] td"

    def consuming(d) -> bool:  # noqa: ANN001
        text = d.find_element(By.CSS_SELECTOR, customs).text
        return samples(d) >= 2 and text.replace(".", "", 1).isdigit() and float(text) > 0

    console.until(consuming, timeout=60, what="customs consuming the new documents, on the chart")
    for service in ("gateway", "customs", "tax", "fx", "logistics", "credit"):
        row = browser.find_element(By.CSS_SELECTOR, f"#latest-table tr[data-service='{service}']")
        cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        assert "not reachable" not in " ".join(cells), (service, cells)
        # the consumer-lag gauge (sw_consumer_lag_records) when the service reports it, else said so
        assert cells[-1] == "not reported" or cells[-1].isdigit(), (service, cells)
    assert "Customs decision time over" in browser.find_element(By.ID, "decision-latest").text
    console.checked("charts")

    # signing out ends the session
    browser.find_element(By.CSS_SELECTOR, "form.sign-out button").click()
    console.find("#token")
    console.open("/console")
    console.find("#token")
    console.checked("signed-out")
    assert len(console.shots) == 10 and all(p.stat().st_size > 1000 for p in console.shots)
