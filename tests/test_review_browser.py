"""The review page in a real browser: Debian's Chromium driven by Selenium.

Accepts one pair and edits another with the keyboard only, reloads, sees both
persisted (and in review.jsonl), checks that the hostile chunk's ``<script>`` was
shown as text and never ran, and saves the screenshot the README shows. Writes a
question of one's own for a chunk (key ``w``) and sees it land in human.jsonl.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from domainfit.artifacts import read_jsonl
from domainfit.review.server import ReviewServer

from test_review_server import make_review_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "review.png"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium + chromium-driver (`make browser`, or apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="domainfit-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1440,900",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, condition, message: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 10, poll_frequency=0.05).until(lambda d: condition(d), message)


def _press(driver, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*keys).perform()


def _current_id(driver) -> str:
    return driver.find_element("css selector", ".entry.current").get_attribute("data-id")


def _status(driver, pair_id: str) -> str:
    return driver.find_element("css selector", f'.entry[data-id="{pair_id}"]').get_attribute("data-status")


def _no_alert(driver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def _open_page(browser, server) -> None:
    """Load the review page and wait until its script has started."""
    browser.get(server.url)
    _wait(browser, lambda d: d.execute_script("return document.body.classList.contains('ready')"), "page script did not start")


def test_keyboard_review_persists_and_document_script_never_runs(tmp_path, browser):
    from selenium.webdriver.common.keys import Keys

    fixture = make_review_run(tmp_path / "kelda-demo")
    edited_question = "What is the minimum length of a company account password?"
    with ReviewServer(fixture.run) as server:
        _open_page(browser, server)

        first = _current_id(browser)
        assert first == fixture.pair_ids[0]
        _press(browser, "a")
        _wait(browser, lambda d: _status(d, first) == "accepted", "'a' did not accept the pair")

        second = _current_id(browser)
        assert second != first
        _press(browser, "e")
        editor = browser.find_element("css selector", f'.detail[data-id="{second}"] textarea')
        _wait(browser, lambda d: d.switch_to.active_element == editor, "'e' did not open the editor")
        editor.send_keys(Keys.CONTROL, "a")
        editor.send_keys(edited_question, Keys.ENTER)
        _wait(browser, lambda d: _status(d, second) == "edited", "Enter did not save the edit")

        third = _current_id(browser)
        _press(browser, "r")
        _wait(browser, lambda d: _status(d, third) == "rejected", "'r' did not reject the pair")

        rows = read_jsonl(fixture.run.review)
        assert [(row["pair_id"], row["decision"]) for row in rows] == [
            (first, "accept"), (second, "edit"), (third, "reject")
        ]
        assert rows[1]["edited_query"] == edited_question

        browser.refresh()
        _wait(browser, lambda d: d.execute_script("return document.body.classList.contains('ready')"), "reload failed")
        assert (_status(browser, first), _status(browser, second), _status(browser, third)) == (
            "accepted", "edited", "rejected"
        )
        query = browser.execute_script(
            "return document.querySelector(arguments[0]).textContent", f'.detail[data-id="{second}"] .question'
        )
        assert query == edited_question

        hostile = browser.execute_script(
            "const node = document.querySelector(arguments[0]);"
            "return {text: node.textContent, scripts: node.querySelectorAll('script, img, b').length};",
            f'.detail[data-id="{fixture.pair_ids[-1]}"] .chunk-text',
        )
        assert "<script>window.__reviewXss = 1; alert(1)</script>" in hostile["text"]
        assert hostile["scripts"] == 0
        assert browser.execute_script("return window.__reviewXss === undefined")
        assert _no_alert(browser)

        _press(browser, "6")  # the 'all' filter: every status on one screen
        _wait(browser, lambda d: d.execute_script("return location.hash") == "#all", "'6' did not switch filter")
        for _ in range(5):
            _press(browser, "j")
        _wait(browser, lambda d: _current_id(d) == fixture.pair_ids[5], "'j' did not move down")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))


def test_write_your_own_question_goes_to_the_human_test_set(tmp_path, browser):
    from selenium.webdriver.common.keys import Keys

    fixture = make_review_run(tmp_path / "kelda-demo")
    question = "How long may a contractor stay on site without an escort?"
    with ReviewServer(fixture.run) as server:
        _open_page(browser, server)
        first = _current_id(browser)
        detail = browser.find_element("css selector", f'.detail[data-id="{first}"]')
        chunk_id = detail.get_attribute("data-chunk-id")

        _press(browser, "w")
        writer = detail.find_element("css selector", "textarea.human-editor")
        _wait(browser, lambda d: d.switch_to.active_element == writer, "'w' did not open the question box")
        writer.send_keys(question, Keys.ENTER)
        _wait(browser, lambda d: d.execute_script(
            "return document.querySelector('[data-count=\"human\"]').textContent") == "1", "the count did not go up")
        listed = detail.find_elements("css selector", '[data-role="human-list"] li')
        assert [item.text for item in listed] == [question]
        assert _status(browser, first) == "unreviewed"  # writing a question decides nothing about the pair

        rows = read_jsonl(fixture.run.human)
        assert [(row["chunk_id"], row["query"], row["origin"]) for row in rows] == [(chunk_id, question, "human")]
        assert not fixture.run.review.exists()

        # the button does the same; Escape cancels without saving
        detail.find_element("css selector", '[data-action="write"]').click()
        _wait(browser, lambda d: d.switch_to.active_element == writer, "the button did not open the question box")
        writer.send_keys("never saved", Keys.ESCAPE)
        _wait(browser, lambda d: not writer.is_displayed(), "Escape did not close the question box")
        assert len(read_jsonl(fixture.run.human)) == 1

        browser.refresh()
        _wait(browser, lambda d: d.execute_script("return document.body.classList.contains('ready')"), "reload failed")
        shown = browser.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).map((node) => node.textContent)",
            f'.detail[data-id="{first}"] [data-role="human-list"] li',
        )
        assert shown == [question]
