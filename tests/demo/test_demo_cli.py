"""``daclip-kit demo``: the verb is registered, starts fast, and refuses bad options in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

import daclip_kit.demo
from daclip_kit.cli.main import main


def test_demo_verb_help_imports_neither_torch_nor_gradio():
    body = ("import sys\nfrom daclip_kit.cli.main import main\ntry:\n    main(['demo', '--help'])\n"
            "except SystemExit:\n    pass\n"
            "print('HEAVY=' + ','.join(m for m in ('torch', 'gradio', 'PIL', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, check=True,
                         env={"HF_HUB_OFFLINE": "1", "PATH": ""}).stdout
    assert "--max-upload-mb" in out and "--daclip-weights" in out and "--share" in out
    assert "HEAVY=\n" in out


def test_demo_is_a_registered_command(capsys):
    assert main(["ls", "commands", "--json"]) == 0
    assert "demo" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--max-pixels", "0"], "--max-pixels must be at least 1, got 0."),
    (["--max-upload-mb", "-1"], "--max-upload-mb must be above 0"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--tile", "8"], "--tile must be at least 32, got 8."),
    (["--model", "irsde-univresal"], "Unknown model 'irsde-univresal'. Did you mean: irsde-universal"),
    (["--sampler", "ddim"], "Unknown sampler 'ddim'"),
    (["--weights", "/no/such/unet"], "--weights '/no/such/unet' does not exist"),
    (["--weights-dir", "/no/such/dir"], "--weights-dir '/no/such/dir' is not a folder"),
    (["--device", "tpu"], "device='tpu' is not a torch device"),
])
def test_bad_options_are_one_line_errors(argv, message, capsys):
    assert main(["demo", *argv]) == 1
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err


def test_without_gradio_the_error_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    monkeypatch.delitem(sys.modules, "daclip_kit.demo.app", raising=False)
    monkeypatch.delattr(daclip_kit.demo, "app", raising=False)
    assert main(["demo", "--port", "0"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "The demo needs Gradio: pip install 'daclip-kit[demo]'" in err
