"""``daclip-kit restore`` result lines: one per image, printed as each file is written, never wrapped
when stdout is a file or pipe; Ctrl-C says how many were written and that ``--resume`` continues."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from daclip_kit.cli.main import main
from daclip_kit.pipelines import files

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(folder, n, size=(16, 24)):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    return folder


def _argv(tiny_models, *argv):
    return ["restore", *map(str, argv), "--weights", str(tiny_models["weights"]), "--daclip-weights",
            str(tiny_models["daclip"]), "--device", "cpu"]


def test_result_lines_are_never_wrapped_in_a_pipe(tiny_models, tmp_path, capsys):
    deep = tmp_path / ("a-folder-with-a-rather-long-name-" * 3) / "inputs"
    src = _images(deep, 2)
    out = tmp_path / ("outputs-in-a-folder-with-a-long-name-" * 2)
    assert main(_argv(tiny_models, src, "-o", out, "--steps", "2")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(len(line) > 200 for line in lines)
    for i in range(2):
        mine = [line for line in lines if line.startswith(f"{src / f'im{i}.png'} -> ")]
        assert len(mine) == 1 and mine[0].startswith(f"{src / f'im{i}.png'} -> {out / f'im{i}.png'} (24x16, ")


def test_ctrl_c_says_how_many_were_written_and_resume_continues(tiny_models, tmp_path, capsys, monkeypatch):
    src = _images(tmp_path / "in", 4)
    out = tmp_path / "out"
    decode = files.decoded_images

    def interrupted_at_the_third(jobs, **kwargs):
        for index, image in decode(jobs, **kwargs):
            if index == 2:
                raise KeyboardInterrupt
            yield index, image

    monkeypatch.setattr(files, "decoded_images", interrupted_at_the_third)
    assert main(_argv(tiny_models, src, "-o", out, "--steps", "2")) == 130
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert f"interrupted: 2 of 4 image(s) written to {out}" in err and "--resume" in err
    assert sorted(p.name for p in out.iterdir()) == ["im0.png", "im1.png"]  # no partial file
    assert sorted(line.split(" -> ")[0] for line in captured.out.splitlines()) == [str(src / "im0.png"),
                                                                                  str(src / "im1.png")]
    monkeypatch.setattr(files, "decoded_images", decode)
    assert main(_argv(tiny_models, src, "-o", out, "--steps", "2", "--resume")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" -> ")[0] for line in lines[:-1]] == [str(src / "im2.png"), str(src / "im3.png")]
    assert lines[-1] == "skipped 2 image(s) restored before (--resume)"


def test_sigint_mid_run_in_a_real_process(tiny_models, tmp_path):
    """The first result line appears while the run goes on; SIGINT then ends it with the count."""
    src = _images(tmp_path / "in", 40, size=(48, 48))
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "daclip_kit", *_argv(tiny_models, src, "-o", out, "--steps", "60",
                                                                       "--workers", "0")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()  # printed as the first file is written, not at the end
        assert " -> " in first, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    written = len(list(out.glob("*.png")))
    assert 1 <= written < 40
    assert f"interrupted: {written} of 40 image(s) written" in " ".join(err.split()) and "--resume" in err
    assert 1 + len(rest.splitlines()) == written  # one line per written file
    assert "Traceback" not in err
