"""End to end, the way a person uses it: ``daclip-kit demo`` with tiny local models, opened in
headless Chromium (Playwright), a photo uploaded, restored, compared and downloaded.

Chromium comes from the Debian package ``chromium`` (``scripts/setup.sh``, the README's set-up, installs it);
Playwright drives that executable, so no browser is downloaded. Without it this test fails, it is never skipped.
"""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest
from _browser import chromium_executable
from _demo_server import START_TIMEOUT, DemoServer
from PIL import Image
from playwright.sync_api import expect, sync_playwright

import daclip_kit

STEPS = 8


@pytest.fixture
def demo_url(tiny_models, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DACLIP_KIT_CACHE": str(tmp_path / "cache"),
           "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "OMP_NUM_THREADS": "1"}
    server = DemoServer(["--weights", str(tiny_models["weights"]), "--daclip-weights", str(tiny_models["daclip"]),
                         "--no-download", "--device", "cpu", "--host", "127.0.0.1", "--port", "0",
                         "--steps", str(STEPS), "--example-size", "64"], env)
    try:
        yield server.wait_until_listening(START_TIMEOUT)
    finally:
        code = server.stop()
    # SIGTERM stops it like Ctrl+C: cleanly, its temporary folder removed
    assert code == 0, "\n".join(server.lines)
    assert not any("Traceback" in line for line in server.lines), "\n".join(server.lines)


@pytest.fixture
def chromium() -> str:
    return chromium_executable()


def test_upload_restore_compare_download_in_chromium(chromium, demo_url, photo, tmp_path, tiny_models):
    started = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100}, accept_downloads=True)
            page.goto(demo_url)
            expect(page.locator("#restore")).to_be_visible(timeout=30_000)

            # upload: DA-CLIP's probabilities of the ten degradations appear as bars
            page.set_input_files("#input-image input[type=file]", str(photo))
            bars = page.locator("#probabilities meter")
            expect(bars).to_have_count(10, timeout=30_000)
            labels = page.locator("#probabilities dt").all_inner_texts()
            assert sorted(labels) == sorted(daclip_kit.DEGRADATIONS)
            percents = [int(t.rstrip("%")) for t in page.locator("#probabilities dd").all_inner_texts()]
            assert percents == sorted(percents, reverse=True) and 95 <= sum(percents) <= 105
            shown = dict(zip(labels, percents, strict=True))
            expect(page.locator("#status")).to_contain_text(f"DA-CLIP thinks this photo is {labels[0]}")

            # the model box offers the registered pipelines; another model brings its sampler and steps
            assert (page.input_value("#sampler input"), page.input_value("#steps input[type=number]")) == (
                "irsde", str(STEPS))
            page.click("#model input")
            offered = [t.split("\n")[-1] for t in page.locator("ul[role=listbox] li").all_inner_texts()]
            assert offered == list(daclip_kit.get_registry("pipelines").names())
            page.get_by_role("option", name="irsde-universal-fast", exact=True).click()
            expect(page.locator("#sampler input")).to_have_value("irsde")
            expect(page.locator("#steps input[type=number]")).to_have_value("10")

            # record every progress text the page shows while sampling
            page.evaluate("""() => {
                window.progressSeen = [];
                const node = document.querySelector('#result');
                new MutationObserver(() => window.progressSeen.push(node.innerText))
                    .observe(node, {subtree: true, childList: true, characterData: true});
            }""")
            page.click("#restore")
            status = page.locator("#status")
            expect(status).to_contain_text("Restored 40x28 in ", timeout=60_000)
            assert "with irsde-universal-fast (irsde, 10 steps, seed 0)" in status.inner_text()
            seen = "\n".join(page.evaluate("window.progressSeen"))
            assert re.search(r"\b[1-9]/10 steps\b", seen), seen  # the progress bar while sampling

            # before/after: two images of the input's size in the comparison slider
            images = page.locator("#result img")
            expect(images).to_have_count(2)
            sizes = images.evaluate_all("els => els.map(e => [e.naturalWidth, e.naturalHeight])")
            assert sizes == [[40, 28], [40, 28]]

            # the download button gives the restored PNG, of the input's size
            with page.expect_download() as info:
                page.click("#download")
            download = info.value
            assert download.suggested_filename == "noisy-photo-restored.png"
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            with Image.open(saved) as im:
                assert im.format == "PNG" and im.size == (40, 28)
                restored = np.asarray(im.convert("RGB"), dtype=np.int16)

            shot = tmp_path / "demo-screenshot.png"
            page.screenshot(path=str(shot), full_page=True)
            with Image.open(shot) as im:
                assert im.size[0] == 1280 and im.size[1] >= 800
        finally:
            browser.close()
    assert time.monotonic() - started < 60

    # the page shows what the library computes: the bars are daclip_kit.classify's probabilities
    # of the photo (to the percent shown), the result is daclip_kit.restore's with the same model,
    # sampler, steps and seed (to uint8 rounding)
    rgb = Image.open(photo).convert("RGB")
    expected = daclip_kit.classify(rgb, weights=tiny_models["daclip"], device="cpu")
    assert all(abs(shown[label] - 100 * p) <= 0.5 + 1e-6 for label, p in expected.items()), (shown, expected)
    same = daclip_kit.restore(rgb, "irsde-universal-fast", weights=tiny_models["weights"],
                              embedder_weights=tiny_models["daclip"], sampler="irsde", steps=10, seed=0, device="cpu",
                              download=False)
    assert np.abs(restored - np.asarray(same, dtype=np.int16)).max() <= 1
    assert np.abs(restored - np.asarray(rgb, dtype=np.int16)).max() > 1  # it did change the photo
