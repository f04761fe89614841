"""The UI in a real browser: Playwright drives Debian's Chromium (``/usr/bin/chromium``; never a downloaded
browser) against ``oncograph ui`` (Streamlit) and the real API. Few and fast: log in, pick a facet value and
see the API's count, reopen the shared URL, save a cohort, export it to completion, open a patient and follow
its lineage. Each test leaves a screenshot in its output folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from ui.conftest import CHOL, UiStack, free_port, wait_for

pytestmark = pytest.mark.integration
CHROMIUM = Path(os.environ.get("ONCOGRAPH_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip
if not CHROMIUM.is_file():  # .ci/run installs it (apt-get install chromium): its absence is a broken setup
    raise RuntimeError(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set ONCOGRAPH_CHROMIUM)")


@pytest.fixture(scope="module")
def ui_url(ui_stack: UiStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "ONCOGRAPH_API_URL": ui_stack.api_url,
        "HOME": str(tmp_path_factory.mktemp("ui-user")),
    }
    env.pop("ONCOGRAPH_API_KEY", None)
    command = [sys.executable, "-m", "oncograph_cli", "ui", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/_stcore/health", process, "oncograph ui", timeout=60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture()
def page(browser: object, ui_url: str, ui_stack: UiStack) -> Iterator[object]:
    """A fresh browser session (its own Streamlit session), logged in."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    context.close()


def log_in(tab: object, url: str, key: str, heading: str = "Cohort builder") -> None:
    """Open ``url`` and log in there (the key lives in the browser session's server-side state only, so a new
    page load starts at the login form, with the URL's page and query parameters kept)."""
    tab.goto(url)  # type: ignore[attr-defined]
    tab.get_by_label("API key", exact=True).fill(key)  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    tab.get_by_role("heading", name=heading).first.wait_for()  # type: ignore[attr-defined]


def metric(tab: object) -> str:
    return str(tab.locator('[data-testid="stMetricValue"]').first.inner_text()).strip()  # type: ignore[attr-defined]


def api_total(stack: UiStack, filters: object) -> int:
    body = httpx.post(f"{stack.api_url}/facets", headers=stack.headers, json={"filters": filters}, timeout=30)
    return int(body.json()["total"])


def test_facets_count_like_the_api_and_the_url_reopens_the_selection(
    page: object, browser: object, ui_url: str, ui_stack: UiStack, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    tab = page
    log_in(tab, ui_url, ui_stack.key)
    expect(tab.locator('[data-testid="stMetricValue"]').first).to_have_text(str(api_total(ui_stack, None)))  # type: ignore[attr-defined]
    project = tab.locator('[data-testid="stMultiSelect"]').filter(has_text="Project")  # type: ignore[attr-defined]
    project.locator("input").fill("TCGA-CHOL")
    project.locator("input").press("Enter")
    expect(tab.locator('[data-testid="stMetricValue"]').first).to_have_text(str(api_total(ui_stack, CHOL)))  # type: ignore[attr-defined]
    tab.wait_for_function("() => location.search.includes('filter=')")  # type: ignore[attr-defined]
    shared = tab.url  # type: ignore[attr-defined]
    assert json.loads(parse_qs(urlparse(shared).query)["filter"][0]) == CHOL
    tab.screenshot(path=str(tmp_path / "builder.png"), full_page=True)  # type: ignore[attr-defined]

    # the link in another browser session: log in there, and the same selection is back
    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()  # type: ignore[attr-defined]
    other.goto(shared)
    other.get_by_label("API key", exact=True).fill(ui_stack.key)
    other.get_by_role("button", name="Log in").click()
    expect(other.locator('[data-testid="stMetricValue"]').first).to_have_text("51")
    expect(other.locator('[data-testid="stMultiSelect"]').filter(has_text="Project")).to_contain_text(
        "TCGA-CHOL"
    )
    other.screenshot(path=str(tmp_path / "shared-link.png"), full_page=True)
    other.context.close()


def test_save_then_export_to_completion(page: object, ui_url: str, ui_stack: UiStack, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    tab = page
    log_in(tab, f"{ui_url}/?filter={json.dumps(CHOL, separators=(',', ':'))}", ui_stack.key)
    expect(tab.locator('[data-testid="stMetricValue"]').first).to_have_text("51")  # type: ignore[attr-defined]
    tab.get_by_role("tab", name="Save").click()  # type: ignore[attr-defined]
    tab.get_by_label("Name").fill("browser cohort")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Save 51 patients as a cohort").click()  # type: ignore[attr-defined]
    expect(tab.get_by_text("Saved cohort", exact=False).first).to_be_visible()  # type: ignore[attr-defined]
    cohorts = httpx.get(f"{ui_stack.api_url}/cohorts", headers=ui_stack.headers, timeout=30).json()["data"]
    cohort = next(c for c in cohorts if c["name"] == "browser cohort")
    assert cohort["size"] == 51

    # in-app navigation keeps the session: the saved cohort's page, then its export
    tab.get_by_text("Open the saved cohort").click()  # type: ignore[attr-defined]
    expect(tab.get_by_role("heading", name=f"browser cohort · cohort {cohort['id']}")).to_be_visible()  # type: ignore[attr-defined]
    tab.get_by_text("Export this cohort").click()  # type: ignore[attr-defined]
    expect(tab.get_by_role("heading", name="Export a cohort")).to_be_visible()  # type: ignore[attr-defined]
    tab.get_by_label("Dataset name (letters, digits, . _ -)").fill("browser-export")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Start the export").click()  # type: ignore[attr-defined]
    expect(tab.get_by_text("is published at")).to_be_visible(timeout=120_000)  # type: ignore[attr-defined]
    expect(tab.get_by_role("button", name="Croissant metadata")).to_be_visible()  # type: ignore[attr-defined]
    exports = httpx.get(f"{ui_stack.api_url}/exports", headers=ui_stack.headers, timeout=30).json()["data"]
    done = next(e for e in exports if e["destination"].endswith("/browser-export"))
    assert done["status"] == "succeeded" and Path(done["destination"], "manifest.json").is_file()
    tab.screenshot(path=str(tmp_path / "export.png"), full_page=True)  # type: ignore[attr-defined]


def test_patient_page_and_its_lineage(page: object, ui_url: str, ui_stack: UiStack, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    tab = page
    case = ui_stack.embedded_case
    log_in(tab, f"{ui_url}/patient?id={case}", ui_stack.key, "Patient")
    expect(tab.get_by_role("heading", name=case)).to_be_visible()  # type: ignore[attr-defined]
    tab.get_by_role("tab", name="Embeddings").click()  # type: ignore[attr-defined]
    expect(tab.get_by_role("combobox", name="Similar patients by")).to_have_value("minilm-l6")  # type: ignore[attr-defined]
    tab.get_by_role("tab", name="Lineage").click()  # type: ignore[attr-defined]
    expect(tab.get_by_text("Source documents")).to_be_visible()  # type: ignore[attr-defined]
    expect(tab.get_by_text("Records and the run that wrote them")).to_be_visible()  # type: ignore[attr-defined]
    tab.screenshot(path=str(tmp_path / "patient-lineage.png"), full_page=True)  # type: ignore[attr-defined]
