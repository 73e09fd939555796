"""What people see, in a real browser: the run report, the dbt docs site and the Data Docs, served over
local HTTP to headless Chromium (Debian's chromium + chromium-driver, driven by Selenium).

Screenshots are saved to artifacts/screenshots/ of the checkout."""

from __future__ import annotations

import re
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import PROJECT_ROOT, FlowRun

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output readable
        pass

    def do_GET(self) -> None:
        # Browsers ask every site for /favicon.ico; a static host answers, so does this one.
        if self.path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture(scope="module")
def site(january_run: FlowRun):
    assert january_run.first.returncode == 0, january_run.first.stderr[-2000:]
    handler = partial(QuietHandler, directory=str(january_run.artifacts))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not shutil.which(path):
            pytest.fail(f"{path} not found: install Debian's {package} (.ci/run does: apt-get install -y {package})")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,2400", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def open_page(browser, url: str, ready, name: str) -> list[str]:
    """Load a page, wait until `ready(driver)`, save a screenshot; return the console's errors."""
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    WebDriverWait(browser, 30).until(ready)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_run_report_renders_its_charts(browser, site):
    errors = open_page(browser, f"{site}/report/index.html",
                       lambda d: len(d.find_elements(By.CSS_SELECTOR, "figure.chart svg")) >= 6, "run_report")
    assert errors == []
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart")
    assert len(charts) >= 6
    assert {c.get_attribute("data-chart") for c in charts} >= {
        "delay-by-hour", "delay-by-carrier", "delay-by-month", "delay-by-weather", "top-routes", "roc",
        "precision-recall", "calibration", "feature-importance"}
    for chart in charts:
        assert chart.size["height"] > 150 and chart.size["width"] > 200, chart.get_attribute("data-chart")
    assert "holds" in browser.find_element(By.ID, "quality").find_element(By.XPATH, "following-sibling::p").text
    links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "p.meta a")}
    assert links["dbt docs"].endswith("/dbt_docs/index.html")
    assert links["Data Docs"].endswith("/data_docs/index.html")
    # three test flights explained in words, with the sentences kept beside the features' definitions
    explained = browser.find_elements(By.CSS_SELECTOR, "div.explained")
    assert len(explained) == 3
    for flight in explained:
        assert "chance of leaving 15+ minutes late" in flight.text
        reasons = flight.find_elements(By.CSS_SELECTOR, "li")
        assert 1 <= len(reasons) <= 3
        effect = r"(raises the chance|lowers the chance|leaves the chance as is)"
        assert all(re.search(effect + r" \([+-]\d+\.\d\d log-odds\)$", r.text) for r in reasons)
        assert not any("_" in r.text.split(":")[0] for r in reasons), "a reason shown by its column name"


# dbt-docs' page ships two template expressions its build leaves uninterpolated:
# <use xlink:href="{{ getIcon(...) }}"> (requested once before AngularJS fills it in) and a favicon link
# "${require('./assets/favicons/favicon.ico')}". The browser requests those literal strings; the 404s are
# dbt's, not ours, and only requests for such literal expressions are excused.
DBT_DOCS_TEMPLATE_REQUEST = re.compile(r"/dbt_docs/(%7B%7B%20getIcon\(|\$%7Brequire\()")


def own_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if not DBT_DOCS_TEMPLATE_REQUEST.search(e)]


def visible_text(driver, text: str) -> bool:
    return any(element.is_displayed()
               for element in driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{text}']"))


def click_visible_text(driver, text: str, last: bool = False) -> None:
    """Click the (first, or last) visible element whose own text is `text` (the docs also render hidden
    copies)."""
    shown = [element for element in driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{text}']")
             if element.is_displayed()]
    if not shown:
        raise AssertionError(f"no visible element with text {text!r}")
    (shown[-1] if last else shown[0]).click()


def body_text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def test_dbt_docs_site_lists_the_models(browser, site):
    errors = open_page(browser, f"{site}/dbt_docs/index.html", lambda d: "flight_delays" in body_text(d),
                       "dbt_docs")
    assert own_errors(errors) == []
    # The project tree: open the project folder, then its models folder.
    # Metrics and Semantic Models list a `flight_delays` folder too: the project's is the last, under Projects.
    if not visible_text(browser, "models"):
        click_visible_text(browser, "flight_delays", last=True)
    WebDriverWait(browser, 10).until(lambda d: visible_text(d, "models"))
    click_visible_text(browser, "models")
    WebDriverWait(browser, 10).until(lambda d: "marts" in body_text(d) and "staging" in body_text(d))
    # A model page, with its SQL-derived columns.
    errors = open_page(
        browser, f"{site}/dbt_docs/index.html#!/model/model.flight_delays.ml_flight_delay_features",
        lambda d: "is_dep_delayed_15" in body_text(d), "dbt_docs_feature_mart",
    )
    assert own_errors(errors) == []
    assert "ml_flight_delay_features" in body_text(browser)


def test_data_docs_show_the_validation_result(browser, site):
    errors = open_page(browser, f"{site}/data_docs/index.html",
                       lambda d: "ml_flight_delay_features.critical" in body_text(d), "data_docs")
    assert errors == []
    # Styles and scripts are local copies: Bootstrap's table styling applied, bootstrap-table loaded.
    assert browser.execute_script("return typeof jQuery !== 'undefined' && typeof jQuery.fn.bootstrapTable")
    assert browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
