"""The web page in a real headless Chromium (Debian's, driven by Playwright) against a real `restore serve`
and `restore worker` on the suite's Redis: what a person does, step by step. Screenshots are written to
test-artifacts/ (or $RESTORE_TEST_ARTIFACTS)."""
import io
import os
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, smooth_image
from restore.color import lab_to_rgb_keep_lightness, rgb_to_lab
from tests.service.conftest import serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it when CI=true)")
ARTIFACTS = Path(os.environ.get("RESTORE_TEST_ARTIFACTS", REPO / "test-artifacts"))
STATIC = REPO / "api" / "static"


def test_no_asset_names_an_outside_address():
    for path in STATIC.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "http://" not in text and "https://" not in text and "//cdn" not in text, path


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture
def site(rdb, workers, identity_models):
    workers.start(identity_models)
    with serving(identity_models) as (base, _):
        yield base


@pytest.fixture
def page(browser, site):
    """A page on the site with every request that leaves 127.0.0.1 refused (and counted)."""
    context = browser.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    page = context.new_page()
    page.outside = []

    def guard(route):
        if route.request.url.startswith(site):
            route.continue_()
        else:
            page.outside.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.goto(site)
    page.wait_for_selector("body[data-ready=true]")
    yield page
    assert page.outside == [], f"the page asked for outside addresses: {page.outside}"
    context.close()


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"page-{name}.png"), full_page=True)


def photo(tmp_path, name="photo.png", gray=False, size=(96, 64)) -> Path:
    image = np.round(smooth_image(size[1], size[0]) * 255).astype(np.uint8)
    Image.fromarray(image.mean(axis=2).astype(np.uint8) if gray else image).save(tmp_path / name)
    return tmp_path / name


def choose_task(page, name):
    page.select_option(".step", name)


def paint_box(page):
    """At 100% zoom, scrolled into view: the photo's box on the screen (1 image pixel = 1 screen pixel)."""
    page.locator("#paint-panel [data-zoom='1']").click()
    page.locator("#paint-view").scroll_into_view_if_needed()
    return page.locator("#paint-stage").bounding_box()


def run_and_wait(page, state="succeeded"):
    page.click("#run")
    card = page.locator(f".job[data-state={state}]").first
    card.wait_for(timeout=60_000)
    return card


def test_denoise_compare_and_download(page, site, tmp_path):
    src = photo(tmp_path)
    page.set_input_files("#files", str(src))
    choose_task(page, "denoise")
    page.fill("#option-strength", "0.7")
    shot(page, "chosen")
    card = run_and_wait(page)
    assert card.locator(".result .before").is_visible() and card.locator(".result .after").is_visible()
    card.locator("[data-zoom='4']").click()  # synchronized zoom up to 400%
    assert "scale(4)" in card.locator(".stage").get_attribute("style")
    card.locator(".split").fill("20")  # the before/after split moves
    assert "inset(0px 0px 0px 20%)" in card.locator(".after").get_attribute("style")
    shot(page, "denoised")
    with page.expect_download() as download:
        card.locator(".download").click()
    saved = Path(download.value.path())
    job = card.get_attribute("data-job")
    served = httpx.get(f"{site}/v1/jobs/{job}/result").content
    assert np.array_equal(np.asarray(Image.open(saved)), np.asarray(Image.open(io.BytesIO(served))))
    assert httpx.get(f"{site}/v1/jobs/{job}").json()["metrics"]["tasks"][0]["strength"] == 0.7


def test_a_painted_mask_reaches_the_job(page, site, tmp_path):
    dark = np.zeros((64, 96, 3), np.uint8)  # the tiny dewatermark model finds nothing on black: only the mask counts
    Image.fromarray(dark).save(tmp_path / "dark.png")
    page.set_input_files("#files", str(tmp_path / "dark.png"))
    choose_task(page, "dewatermark")
    page.check("input[name=tool][value=mask]")
    page.fill("#brush-size", "8")
    box = paint_box(page)
    page.mouse.move(box["x"] + 10, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(box["x"] + 80, box["y"] + 30, steps=10)
    page.mouse.up()
    page.click("#undo")  # undo, then paint the stroke again
    page.mouse.move(box["x"] + 10, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(box["x"] + 80, box["y"] + 30, steps=10)
    page.mouse.up()
    shot(page, "mask")
    card = run_and_wait(page)
    metrics = httpx.get(f"{site}/v1/jobs/{card.get_attribute('data-job')}").json()["metrics"]["tasks"][0]
    assert metrics["guided"] is True
    assert 0.08 < metrics["watermarked_fraction"] < 0.2  # a stroke 8 px wide and 70 long on 96 x 64


def test_colour_hints_land_where_they_were_put(page, site, tmp_path):
    src = photo(tmp_path, "gray.png", gray=True, size=(120, 80))
    page.set_input_files("#files", str(src))
    choose_task(page, "colorize")
    page.check("input[name=tool][value=hint]")
    page.fill("#brush-size", "3")
    box = paint_box(page)
    spots = {(30, 20): "#d02020", (90, 60): "#2040e0"}
    for (x, y), colour in spots.items():
        page.fill("#hint-colour", colour)
        page.mouse.click(box["x"] + x + 0.5, box["y"] + y + 0.5)
    shot(page, "hints")
    card = run_and_wait(page)
    with page.expect_download() as download:
        card.locator(".download").click()
    out = np.asarray(Image.open(download.value.path()).convert("RGB")).astype(np.float32) / 255
    gray = np.asarray(Image.open(src)).astype(np.float32) / 255
    for (x, y), colour in spots.items():
        want = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], np.float32) / 255
        L = rgb_to_lab(np.repeat(gray[y, x], 3))[0]
        # The hint's a and b at the photo's own lightness (with the least chroma loss that fits the gamut there).
        target = rgb_to_lab(lab_to_rgb_keep_lightness(np.array([L, *rgb_to_lab(want)[1:]], np.float32)))
        got = rgb_to_lab(out[y, x])
        assert abs(got[0] - L) < 1.0 and np.linalg.norm(got[1:] - target[1:]) < 3, (x, y, got, target)
    shot(page, "colorized")


def test_a_bad_file_shows_its_error(page, tmp_path):
    (tmp_path / "notes.png").write_bytes(b"this is not a picture")
    page.set_input_files("#files", [str(photo(tmp_path)), str(tmp_path / "notes.png")])
    choose_task(page, "denoise")
    page.click("#run")
    failed = page.locator(".job[data-state=failed]")
    failed.wait_for(timeout=60_000)
    assert "notes.png" in failed.locator(".job-name").inner_text()
    assert "not a readable image" in failed.locator(".job-error").inner_text()
    page.locator(".job[data-state=succeeded]").wait_for(timeout=60_000)  # the good file is done all the same
    shot(page, "bad-file")


def test_the_page_asks_for_a_key_once_and_keeps_it_for_the_tab(browser, rdb, workers, identity_models, tmp_path):
    workers.start(identity_models)
    with serving(identity_models, RESTORE_API_KEYS='["secret"]') as (base, _):
        context = browser.new_context(viewport={"width": 390, "height": 844})  # phone width
        page = context.new_page()
        page.goto(base)
        page.locator("#key-dialog").wait_for(state="visible")
        shot(page, "key")
        page.fill("#key-input", "secret")
        page.click("#key-ok")
        page.wait_for_selector("body[data-ready=true]")
        assert page.evaluate("sessionStorage.getItem('restore-api-key')") == "secret"
        page.set_input_files("#files", str(photo(tmp_path)))
        run_and_wait(page)
        shot(page, "phone")
        context.close()


def test_controls_are_labelled_and_reachable_by_keyboard(page):
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "drop"
    for label in ("Colour", "Size (image pixels)", "Key"):
        assert page.get_by_label(label).count() >= 1
    missing = page.evaluate("""() => [...document.querySelectorAll('input, select')]
        .filter((el) => el.type !== 'file' && !el.labels?.length && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML)""")
    assert missing == []
