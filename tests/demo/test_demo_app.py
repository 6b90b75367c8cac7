"""The Gradio page without a browser: its handlers, its queue, and the server it starts."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import daclip_kit
from daclip_kit.demo import app
from daclip_kit.demo.core import DemoSettings

pytestmark = pytest.mark.usefixtures("one_thread")


def test_restore_handler_gives_the_pair_the_probabilities_and_a_download(settings, photo, tmp_path):
    seen = []

    def progress(value, desc=None, unit="steps"):
        seen.append((value, desc))

    pair, probabilities, status, download = app.on_restore(str(photo), "irsde-universal", "irsde", 2, 0, 0,
                                                           settings, tmp_path, progress=progress)
    before, after = (Image.open(path) for path in pair)
    assert before.size == after.size == (40, 28)
    assert Path(pair[0]).parent.parent == tmp_path and Path(pair[1]).name == "noisy-photo-restored.png"
    np.testing.assert_array_equal(np.asarray(before), np.asarray(Image.open(photo).convert("RGB")))
    assert set(probabilities) == set(daclip_kit.DEGRADATIONS)
    assert status.startswith("Restored 40x28 in ")
    assert seen[0] == (0, "Loading the models and classifying") and seen[-1] == ((2, 2), "Restoring")
    assert download.value["orig_name"] == "noisy-photo-restored.png" and download.interactive
    with Image.open(download.value["path"]) as im:
        assert im.format == after.format == "PNG"
        np.testing.assert_array_equal(np.asarray(im), np.asarray(after))


def test_errors_become_a_readable_status_line(photo, tmp_path, monkeypatch):
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "empty-cache"))
    offline = DemoSettings(download=False)
    pair, probabilities, status, download = app.on_restore(str(photo), "irsde-universal", None, 2, 0, 0, offline,
                                                           tmp_path)
    assert pair is None and probabilities is None and not download.interactive
    assert status.startswith("**Error:** The network and DA-CLIP weights are missing:") and "universal-ir.pth" in status
    assert "Traceback" not in status and "\n" not in status
    probabilities, status = app.on_image(str(photo), "irsde-universal", offline)
    assert probabilities is None and r"daclip\_ViT-B-32.pt" in status  # Markdown shows it as written
    _, _, status, _ = app.on_restore(None, "irsde-universal", None, 2, 0, 0, offline, tmp_path)
    assert status == "**Error:** No image: upload a photo or pick one of the examples."
    assert app.on_image(None, "irsde-universal", offline) == (None, "")


def test_status_text_is_shown_as_written():
    assert app.plain("wild-daclip_ViT-L-14.pt *not bold* <b>x</b> [link](y)") == (
        r"wild-daclip\_ViT-L-14.pt \*not bold\* \<b\>x\</b\> \[link\](y)")


def test_unexpected_errors_are_named_not_dumped(settings, photo, tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(app, "run_restore", broken)
    _, _, status, _ = app.on_restore(str(photo), "irsde-universal", None, 2, 0, 0, settings, tmp_path)
    assert status.startswith("**Unexpected error** (RuntimeError: CUDA out of memory)")
    assert "Traceback" in caplog.text  # the details go to the server log


def test_classify_handler_and_the_model_and_sampler_widgets(settings, photo):
    probabilities, status = app.on_image(str(photo), "irsde-universal", settings)
    best = next(iter(probabilities))
    assert set(probabilities) == set(daclip_kit.DEGRADATIONS) and f"**{best}**" in status
    summary, sampler, steps = app.on_model("irsde-universal-fast")
    assert "strided to 10" in summary.info and sampler.value == "irsde" and sampler.interactive
    assert steps.value == 10 and steps.maximum == 100
    assert app.on_sampler("irsde-universal-fast", "mrs").value == 10  # the recipe's steps stay
    assert app.on_sampler("irsde-universal", "heun").value == 100


def test_model_jobs_share_one_queue_slot(settings, tmp_path):
    demo = app.build_demo(settings, output_dir=tmp_path)
    models = [fn for fn in demo.fns.values() if fn.queue and all(t[1] != "unload" for t in fn.targets)]
    jobs = {fn.api_name: fn for fn in models}
    assert {"classify", "restore"} <= set(jobs)
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in models} == {(app.MODEL_QUEUE, 1)}
    widgets = {c.elem_id: c for c in demo.blocks.values() if getattr(c, "elem_id", None)}
    assert widgets["model"].choices[0][0] == "irsde-universal" and widgets["steps"].value == 100
    assert widgets["sampler"].value == "irsde"


def test_server_starts_serves_and_stops(settings, tmp_path):
    from daclip_kit.demo.core import make_examples

    examples = make_examples(tmp_path / "ex", longest=48)
    demo, url, share_url = app.start(settings, port=0, examples=examples, work_dir=tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:") and share_url is None
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200 and "DA-CLIP image restoration" in page.read().decode()
        with urllib.request.urlopen(url.rstrip("/") + "/config", timeout=30) as cfg:
            text = cfg.read().decode()
        assert re.search(r'"max_file_size": ?20971520\b', text)  # 20 MB: uploads above are refused
    finally:
        demo.close()


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas deprecations inside Gradio
def test_concurrent_users_are_served_one_at_a_time(settings, photo, tmp_path, monkeypatch):
    """Two browsers press Restore at once: the queue runs the jobs in order, never together."""
    import threading
    import time

    from gradio_client import Client, handle_file

    spans = []
    real = app.run_restore

    def timed(*args, **kwargs):
        begin = time.monotonic()
        time.sleep(0.5)  # long enough for the second job to overlap if the queue let it
        result = real(*args, **kwargs)
        spans.append((begin, time.monotonic(), threading.get_ident()))
        return result

    monkeypatch.setattr(app, "run_restore", timed)
    demo, url, _ = app.start(settings, port=0, work_dir=tmp_path)
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path / "client"))
        jobs = [client.submit(handle_file(str(photo)), "irsde-universal", "irsde", 2, seed, 0, api_name="/restore")
                for seed in (0, 1)]
        results = [job.result(timeout=120) for job in jobs]
    finally:
        demo.close()
    assert len(spans) == 2 and all(r[2].startswith("Restored 40x28") for r in results)
    (_, first_end, _), (second_start, _, _) = sorted(spans)
    assert second_start >= first_end  # one model slot: the second waited for the first


def test_a_port_in_use_is_a_one_line_error(settings, tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(daclip_kit.ConfigError, match=rf"^Port {port} on 127.0.0.1 is in use; pass another --port"):
            app.start(settings, port=port, work_dir=tmp_path)


@pytest.mark.parametrize("flagged", [True, False])
def test_the_page_says_when_a_photo_looks_like_no_known_degradation(settings, photo, tmp_path, flagged):
    """A DA-CLIP calibrated so that every photo (threshold near 1) or none (threshold 0) is unknown."""
    import dataclasses

    from daclip_kit.core.ood import calibrate
    from daclip_kit.demo.core import classify_report, run_restore
    from daclip_kit.embedders.daclip.convert import load_daclip
    from daclip_kit.train.calibrate import write_calibrated

    scores = [0.999, 1.0] if flagged else [0.0, 0.0]
    calibrated = tmp_path / "calibrated"
    write_calibrated(load_daclip(settings.embedder_weights), calibrate(scores, daclip_kit.DEGRADATIONS), calibrated)
    mine = dataclasses.replace(settings, embedder_weights=calibrated)

    report = classify_report(str(photo), "irsde-universal", settings=mine)
    assert report["unknown_degradation"] is flagged
    assert report["ood_score"] == pytest.approx(max(report["probabilities"].values()), abs=1e-6)
    probabilities, status = app.on_image(str(photo), "irsde-universal", mine)
    assert probabilities == report["probabilities"]
    assert status.startswith("**Unknown degradation.**") is flagged
    assert ("looks like none of the degradations this DA-CLIP knows" in status) is flagged
    message = run_restore(photo, "irsde-universal", None, 1, 0, None, settings=mine).message
    assert ("looks like none of the degradations this DA-CLIP knows" in message) is flagged
