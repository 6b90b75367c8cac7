"""The demo leaves no file behind: a real ``daclip-kit demo`` server, a photo uploaded and restored
through Gradio's own client, then the session ends (its files go at once) or the server stops on
Ctrl+C / SIGTERM (every file it stored goes, the examples' copies included)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from _demo_server import START_TIMEOUT, DemoServer
from gradio_client import Client, handle_file

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def start_server(tiny_models, tmp_path) -> DemoServer:
    """The demo with its temporary folder (``TMPDIR``) and a user's ``GRADIO_TEMP_DIR`` in ``tmp_path``."""
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DACLIP_KIT_CACHE": str(tmp_path / "cache"),
           "TMPDIR": str(tmp_path / "tmp"), "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "OMP_NUM_THREADS": "1"}
    server = DemoServer(["--weights", str(tiny_models["weights"]), "--daclip-weights", str(tiny_models["daclip"]),
                        "--no-download", "--device", "cpu", "--port", "0", "--steps", "2", "--example-size", "48"],
                       env)
    server.wait_until_listening(START_TIMEOUT)
    return server


def restore_once(url: str, photo: Path, tmp_path: Path) -> Client:
    client = Client(url, verbose=False, download_files=str(tmp_path / "client"))
    *_, status, _download = client.predict(handle_file(str(photo)), "irsde-universal", "irsde", 2, 0, 0,
                                           api_name="/restore")
    assert status.startswith("Restored 40x28"), status
    return client


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_demo_removes_what_a_session_stored_when_it_ends_and_everything_when_stopped(tiny_models, photo,
                                                                                        tmp_path, signum):
    server = start_server(tiny_models, tmp_path)
    try:
        examples = {p for p in files_under(tmp_path / "tmp") if p.name.endswith("-noisy.png")}
        assert len(examples) >= 2  # the example photo and Gradio's copy of it
        # a session ends (its tab is closed: the heartbeat stops and Gradio runs the unload event)
        client = restore_once(server.url, photo, tmp_path)
        session = {p for p in files_under(tmp_path / "tmp") if p.name.startswith("noisy-photo")}
        # the upload, and the before/after PNGs in the session's folder
        assert sorted(p.name for p in session) == ["noisy-photo-restored.png", "noisy-photo.png", "noisy-photo.png"]
        client.close()
        assert wait_for(lambda: not any(p.exists() for p in session)), "\n".join(server.lines)
        assert all(p.exists() for p in examples)  # the examples stay for the other sessions
        # another session is still open when the server stops
        restore_once(server.url, photo, tmp_path)
        assert any(p.name == "noisy-photo-restored.png" for p in files_under(tmp_path / "tmp"))
    finally:
        code = server.stop(signum)
    assert code == 0, "\n".join(server.lines)
    assert list((tmp_path / "tmp").iterdir()) == [], "\n".join(server.lines)  # nothing left, uploads included
    assert files_under(tmp_path / "gradio") == []  # the user's own Gradio folder was never written
