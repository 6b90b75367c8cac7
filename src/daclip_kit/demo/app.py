"""The demo's web page (Gradio Blocks): upload or pick a photo, see what DA-CLIP thinks is wrong with
it, restore it, compare before and after, download the result.

The page only wires widgets to the plain functions of :mod:`daclip_kit.demo.core`
(:func:`~daclip_kit.demo.core.run_classify`, :func:`~daclip_kit.demo.core.run_restore`); the
handlers here turn their errors into a readable status line (never a traceback) and feed
``gr.Progress`` from the restore's ``progress(done, total)`` callback. Every model job runs in one
queue slot (``concurrency_id="model"``, limit 1), so concurrent users share one GPU in order.

Files: :func:`start` points Gradio's upload and cache folder (``GRADIO_TEMP_DIR``) into the
caller's work folder, so stopping the demo and removing that folder removes every file it stored
(uploads, the examples' copies, results). Each browser session writes its results into a folder of
its own (:class:`SessionFiles`); when the session ends (tab closed or reloaded) that folder and the
session's uploads are removed at once.

Import this module only when the demo starts: it imports Gradio.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import ConfigError, DaclipKitError
from .core import (
    MB,
    DemoSettings,
    Example,
    classify_report,
    load_input,
    model_choices,
    recipe_for,
    run_restore,
    sampler_choices,
    step_range,
    to_pil,
    unknown_note,
    weights_summary,
)

log = logging.getLogger(__name__)

#: Every event that runs a model shares this queue group, which runs MODEL_SLOTS jobs at a time.
MODEL_QUEUE = "model"
MODEL_SLOTS = 1

TITLE = "DA-CLIP image restoration"

INTRO = """\
# DA-CLIP universal image restoration
Upload a damaged photo, or pick an example below. **DA-CLIP** (Luo et al., ICLR 2024) first tells
what is wrong with it (noise, blur, haze, rain, raindrops, snow, shadows, low light, JPEG artefacts
or missing regions), then the **IR-SDE** network restores it, guided by that judgement. Drag the
handle on the result to compare before and after.
"""

CSS = """
#status { min-height: 2.5em; }
#status p { margin: 0.25em 0; }
"""


def plain(text: object) -> str:
    """``text`` for the Markdown status line, shown as written (``*``, ``_``, ``<``, ... escaped)."""
    return re.sub(r"([\\`*_\[\]<>|~])", r"\\\1", str(text))


def _error_text(exc: BaseException) -> str:
    """The status line of a failed job: the error's own message, never a traceback."""
    if isinstance(exc, DaclipKitError):
        return f"**Error:** {plain(exc)}"
    log.error("demo job failed", exc_info=exc)
    return (f"**Unexpected error** ({type(exc).__name__}: {plain(exc)}). The server log has the details; "
            "please report it.")


def on_image(image: Any, model: str, settings: DemoSettings) -> tuple[dict[str, float] | None, str]:
    """A new upload or example: DA-CLIP's probabilities and a status line."""
    if image is None:
        return None, ""
    try:
        report = classify_report(image, model, settings=settings)
    except Exception as exc:
        return None, _error_text(exc)
    probabilities = report["probabilities"]
    if not probabilities:
        return None, f"{plain(model)} has no DA-CLIP; press **Restore**."
    label, p = next(iter(probabilities.items()))
    if report["unknown_degradation"]:
        return probabilities, f"**Unknown degradation.**{plain(unknown_note(report))} Press **Restore** to try anyway."
    return probabilities, f"DA-CLIP thinks this photo is **{plain(label)}** ({p:.0%}). Press **Restore**."


class SessionFiles:
    """The files each browser session leaves on the server, removed when the session ends.

    A session's results go into ``root/<digest of its session id>/``; the uploads its jobs read
    (files under Gradio's upload folder ``uploads``) are noted. :meth:`end` removes the session's
    folder and those of its uploads that no live session still uses and that are not ``shared``
    (the examples' copies, which every session sees).

    Args:
        root: folder of the sessions' result folders (inside Gradio's cache, so Gradio serves the
            files from there instead of copying them).
        uploads: Gradio's upload folder (``GRADIO_TEMP_DIR``).
        shared: returns the paths never removed at a session's end.
    """

    def __init__(self, root: str | Path, uploads: str | Path, shared=lambda: ()):
        self.root = Path(root)
        self.uploads = Path(uploads).resolve()
        self._shared = shared
        self._inputs: dict[str, set[Path]] = {}
        self._lock = threading.Lock()

    def folder(self, session: str | None) -> Path:
        """The result folder of ``session`` (created; ``None``: calls without a session share one)."""
        digest = hashlib.sha256((session or "").encode()).hexdigest()[:24]
        path = self.root / digest
        path.mkdir(parents=True, exist_ok=True)
        return path

    def note_input(self, session: str | None, image: Any) -> None:
        """Remember that ``session`` used ``image`` (a path; only files in the upload folder count)."""
        if not isinstance(image, (str, Path)):
            return
        path = Path(image).resolve()
        if self.uploads in path.parents:
            with self._lock:
                self._inputs.setdefault(session or "", set()).add(path)

    def end(self, session: str | None) -> None:
        """Remove the files of a session that has ended."""
        key = session or ""
        shared = {Path(p).resolve() for p in self._shared()}
        with self._lock:
            mine = self._inputs.pop(key, set())
            in_use = set().union(*self._inputs.values())
        shutil.rmtree(self.root / hashlib.sha256(key.encode()).hexdigest()[:24], ignore_errors=True)
        for path in mine - in_use - shared:
            _remove_upload(path, self.uploads)


def _remove_upload(path: Path, uploads: Path) -> None:
    """Remove an uploaded file and the folders Gradio made for it, up to the upload folder, once empty."""
    path.unlink(missing_ok=True)
    for parent in path.parents:
        if parent == uploads or uploads not in parent.parents:
            break
        try:
            parent.rmdir()
        except OSError:  # not empty: another file lives there
            break


def _kept_files(blocks: Iterable[Any]) -> set[str]:
    """The files Gradio keeps for every session (the examples' copies in its cache)."""
    return {path for block in blocks for path in getattr(block, "keep_in_cache", ())}


def on_restore(image: Any, model: str, sampler: str | None, steps: Any, seed: Any, tile: Any,
               settings: DemoSettings, output_dir: Path, progress=None):
    """The Restore button: ``(before/after pair of PNG paths, probabilities, status, download button)``.

    The input (as restored, RGB) and the result are written as PNGs into a new folder in
    ``output_dir``, the session's folder; the page shows and offers them from there."""
    def report(done: int, total: int) -> None:
        if progress is not None:
            progress((done, total), desc="Restoring", unit="steps")

    try:
        if progress is not None:
            progress(0, desc="Loading the models and classifying")
        lq = load_input(image, settings)
        restored, probabilities, message = run_restore(lq, model, sampler, steps, seed, tile, settings=settings,
                                                       progress=report)
    except Exception as exc:
        return None, None, _error_text(exc), gr.DownloadButton(value=None, interactive=False)
    stem = Path(image).stem if isinstance(image, (str, Path)) else "image"
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=output_dir))
    before, target = folder / f"{stem}.png", folder / f"{stem}-restored.png"
    to_pil(lq).save(before, format="PNG")
    restored.save(target, format="PNG")
    return ((str(before), str(target)), probabilities or None, plain(message),
            gr.DownloadButton(value=str(target), interactive=True))


def on_model(model: str, settings: DemoSettings | None = None):
    """A model choice: its summary (under the model box: which weights and DA-CLIP run,
    :func:`~daclip_kit.demo.core.weights_summary`), its sampler, its default and largest step count
    (with the sampler recorded with ``settings.weights``, e.g. a distilled student's)."""
    settings = settings or DemoSettings()
    recipe = recipe_for(model, weights=settings.weights, weights_dirs=settings.weights_dirs)
    steps = step_range(model, weights=settings.weights, weights_dirs=settings.weights_dirs)
    sampler = gr.Dropdown(sampler_choices(), value=recipe.sampler or None, interactive=bool(recipe.sampler))
    try:
        about = weights_summary(model, settings)
    except DaclipKitError as exc:  # shown under the model box; Restore then says it again
        about = f"{recipe.summary} - cannot run with these weights: {exc}"
    summary = gr.Dropdown(info=about or None)
    if steps is None:
        return summary, sampler, gr.Slider(interactive=False)
    return summary, sampler, gr.Slider(value=steps[0], maximum=steps[1], interactive=True)


def on_sampler(model: str, sampler: str | None, settings: DemoSettings | None = None):
    """A sampler choice: its default and largest step count with this model."""
    try:
        settings = settings or DemoSettings()
        steps = step_range(model, sampler, settings.weights, weights_dirs=settings.weights_dirs)
    except DaclipKitError:
        return gr.Slider()
    if steps is None:
        return gr.Slider(interactive=False)
    return gr.Slider(value=steps[0], maximum=steps[1])


def build_demo(settings: DemoSettings, examples: Sequence[Example] = (), *, output_dir: str | Path) -> gr.Blocks:
    """The page, not yet queued or launched (:func:`start` does both).

    Args:
        settings: weights, device, limits and the first values of the widgets.
        examples: example photos (:func:`~daclip_kit.demo.core.make_examples`).
        output_dir: where each session's restored PNGs are written (a folder per session, removed
            when the session ends; inside Gradio's cache folder, so that they are served in place).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    demo_blocks: list[gr.Blocks] = []
    sessions = SessionFiles(output_dir, gr.utils.get_upload_folder(),
                            shared=lambda: _kept_files(demo_blocks[0].blocks.values()) if demo_blocks else ())
    recipe = recipe_for(settings.model, settings.sampler, settings.weights, weights_dirs=settings.weights_dirs)
    steps = step_range(settings.model, settings.sampler, settings.weights, weights_dirs=settings.weights_dirs)
    summary = weights_summary(settings.model, settings)  # a --daclip-weights that does not fit fails here
    default_steps, max_steps = steps if steps is not None else (1, 1)
    if settings.steps is not None:
        default_steps = settings.steps
        max_steps = max(max_steps, settings.steps)

    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(INTRO)
        if settings.weights is not None or settings.embedder_weights is not None:
            gr.Markdown(f"**Running your weights:** {plain(summary)}", elem_id="weights")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                image = gr.Image(type="filepath", image_mode=None, label="Degraded photo",
                                 sources=["upload", "clipboard"], elem_id="input-image", height=340)
                button = gr.Button("Restore", variant="primary", elem_id="restore")
                if examples:
                    kinds = ", ".join(e.degradation for e in examples)
                    gr.Examples([[str(e.path)] for e in examples], inputs=[image], examples_per_page=len(examples),
                                label=f"Examples: bundled photos, degraded by daclip-kit ({kinds})",
                                elem_id="examples")
                with gr.Accordion("Model and sampling", open=True):
                    model = gr.Dropdown(model_choices(settings), value=settings.model, label="Model",
                                        info=summary or None, elem_id="model")
                    with gr.Row():
                        sampler = gr.Dropdown(sampler_choices(), value=recipe.sampler or None, label="Sampler",
                                              interactive=bool(recipe.sampler), elem_id="sampler")
                        step_slider = gr.Slider(1, max_steps, value=default_steps, step=1, label="Steps",
                                                info="network evaluations", interactive=steps is not None,
                                                elem_id="steps")
                    with gr.Row():
                        seed = gr.Number(settings.seed, label="Seed", precision=0, minimum=0, elem_id="seed")
                        tile = gr.Number(settings.tile or 0, label="Tile size", info="0: the whole image at once",
                                         precision=0, minimum=0, step=64, elem_id="tile")
            with gr.Column(scale=1):
                slider = gr.ImageSlider(label="Before / after", type="pil", format="png", elem_id="result",
                                        max_height=480, interactive=False)
                status = gr.Markdown("", elem_id="status")
                download = gr.DownloadButton("Download restored PNG", interactive=False, elem_id="download")
                # every word of the model's DA-CLIP gets its bar (ten for the released models)
                probabilities = gr.Label(num_top_classes=None, label="What DA-CLIP thinks is wrong",
                                         elem_id="probabilities")

        def classify_event(img, name, request: gr.Request):
            sessions.note_input(request.session_hash, img)
            return on_image(img, name, settings)

        def restore_event(img, name, smp, n, s, t, request: gr.Request,
                          progress=gr.Progress()):  # noqa: B008 - how Gradio injects it
            sessions.note_input(request.session_hash, img)
            return on_restore(img, name, smp, n, s, t, settings, sessions.folder(request.session_hash),
                              progress=progress)

        def end_session(request: gr.Request):
            sessions.end(request.session_hash)

        image.change(classify_event, [image, model], [probabilities, status], concurrency_id=MODEL_QUEUE,
                     concurrency_limit=MODEL_SLOTS, show_progress="minimal", api_name="classify")
        button.click(restore_event, [image, model, sampler, step_slider, seed, tile],
                     [slider, probabilities, status, download], concurrency_id=MODEL_QUEUE,
                     concurrency_limit=MODEL_SLOTS, api_name="restore")
        model.input(lambda name: on_model(name, settings), [model], [model, sampler, step_slider], queue=False,
                    show_progress="hidden", api_visibility="private")
        model.input(classify_event, [image, model], [probabilities, status], concurrency_id=MODEL_QUEUE,
                    concurrency_limit=MODEL_SLOTS, show_progress="minimal", api_visibility="private")
        sampler.input(lambda name, smp: on_sampler(name, smp, settings), [model, sampler], [step_slider], queue=False,
                      show_progress="hidden", api_visibility="private")
        demo.unload(end_session)
    demo_blocks.append(demo)
    return demo


def start(settings: DemoSettings, *, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
          examples: Sequence[Example] = (), work_dir: str | Path, max_queue: int = 32
          ) -> tuple[gr.Blocks, str, str | None]:
    """Start serving the demo in the background; ``demo.block_thread()`` then waits for Ctrl+C
    (or SIGTERM) and ``demo.close()`` stops it.

    Every file the server stores goes into ``work_dir``: Gradio's uploads and cache into
    ``work_dir/gradio`` (this sets ``GRADIO_TEMP_DIR`` for the process), the sessions' results into
    ``work_dir/gradio/sessions``. Removing ``work_dir`` after ``demo.close()`` removes them all.

    Args:
        settings: see :class:`~daclip_kit.demo.core.DemoSettings`.
        host, port: where to listen (``127.0.0.1``: this machine only; ``0.0.0.0``: the network;
            port ``0``: any free port).
        share: also open a public Gradio share link (off by default).
        examples: example photos shown under the upload box.
        work_dir: a folder for every file the server stores (the caller removes it).
        max_queue: jobs allowed to wait; more are refused with "queue full".

    Returns:
        ``(demo, local URL, share URL or None)``.

    Raises:
        ConfigError: the port cannot be opened.
    """
    work_dir = Path(work_dir)
    cache = work_dir / "gradio"
    os.environ["GRADIO_TEMP_DIR"] = str(cache)  # read by Gradio when the page and the server are made
    demo = build_demo(settings, examples, output_dir=cache / "sessions")
    demo.queue(default_concurrency_limit=MODEL_SLOTS, max_size=max_queue)
    allowed = sorted({str(work_dir), *(str(Path(e.path).parent) for e in examples)})
    try:
        _app, local_url, share_url = demo.launch(
            server_name=host, server_port=port or _free_port(host), share=share, prevent_thread_lock=True,
            quiet=True, max_file_size=int(settings.max_upload_mb * MB), allowed_paths=allowed, ssr_mode=False,
            mcp_server=False, show_error=False, theme=gr.themes.Soft(primary_hue="indigo"), css=CSS,
            footer_links=["api", "gradio"])
    except OSError as exc:
        if "Cannot find empty port" in str(exc):
            raise ConfigError(f"Port {port} on {host} is in use; pass another --port (0 picks a free one).") from None
        raise ConfigError(f"Cannot serve the demo on {host}:{port} ({exc}); pass another --port or --host.") from None
    return demo, local_url, share_url


def _free_port(host: str) -> int:
    """A port on ``host`` that is free now (``--port 0``)."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
