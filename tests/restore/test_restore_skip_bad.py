"""``daclip-kit restore`` with bad inputs: without ``--skip-bad`` every bad input is named in one
error before any model is loaded; with it the good images are restored, each bad one is named with
its reason and the run ends with a summary and exit status 1."""

import json

import numpy as np
import pytest
from PIL import Image

from daclip_kit.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


def _argv(tiny_models, *argv):
    return ["restore", *map(str, argv), "--weights", str(tiny_models["weights"]), "--daclip-weights",
            str(tiny_models["daclip"]), "--steps", "2", "--device", "cpu"]


def _folder(tmp_path):
    """Two good 16x20 images, one that is not an image, one above ``--max-pixels 400``."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "c.png"):
        Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(src / name)
    Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(src / "big.png")
    (src / "b.png").write_bytes(b"not an image")
    return src


def test_every_bad_input_is_named_in_one_error_before_any_model_is_loaded(tiny_models, tmp_path, capsys,
                                                                           monkeypatch):
    import daclip_kit.pipelines.build as build

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(build, "build_pipeline", no_model)
    src = _folder(tmp_path)
    out = tmp_path / "out"
    assert main(_argv(tiny_models, src, tmp_path / "missing.png", "-o", out, "--max-pixels", "400")) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "3 of 5 input(s) cannot be restored; nothing was written" in lines[0]
    assert len(lines) == 5 and "Traceback" not in err
    assert "b.png" in lines[1] and "Cannot read" in lines[1]
    assert "big.png" in lines[2] and "above the limit" in lines[2] and "--max-pixels" in lines[2]
    assert "missing.png" in lines[3] and "does not exist" in lines[3]
    assert "pass --skip-bad to restore the others" in lines[4]
    assert not out.exists()


def test_skip_bad_restores_the_good_images_and_names_the_bad_ones(tiny_models, tmp_path, capsys):
    src = _folder(tmp_path)
    out = tmp_path / "out"
    assert main(_argv(tiny_models, src, "-o", out, "--max-pixels", "400", "--skip-bad")) == 1
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    assert [line.split(" -> ")[0] for line in captured.out.splitlines() if " -> " in line] == [
        str(src / "a.png"), str(src / "c.png")]
    err = captured.err.splitlines()
    skipped = [line for line in err if line.startswith("warning: skipped: ")]
    assert len(skipped) == 2
    assert "b.png" in skipped[0] and "Cannot read" in skipped[0]
    assert "big.png" in skipped[1] and "above the limit" in skipped[1]
    assert err[-1] == (f"error: restored 2 of 4 image(s); skipped 2: {src / 'b.png'}, {src / 'big.png'} "
                       "(reasons above).")


def test_skip_bad_json_lists_the_bad_inputs(tiny_models, tmp_path, capsys):
    src = _folder(tmp_path)
    assert main(_argv(tiny_models, src, "-o", tmp_path / "out", "--max-pixels", "400", "--skip-bad",
                      "--json")) == 1
    summary = json.loads(capsys.readouterr().out)
    assert [r["input"] for r in summary["images"]] == [str(src / "a.png"), str(src / "c.png")]
    assert [b["input"] for b in summary["bad"]] == [str(src / "b.png"), str(src / "big.png")]
    assert "above the limit" in summary["bad"][1]["reason"]


def test_skip_bad_with_nothing_good_is_an_error(tiny_models, tmp_path, capsys):
    (tmp_path / "b.png").write_bytes(b"not an image")
    assert main(_argv(tiny_models, tmp_path / "b.png", "-o", tmp_path / "out.png", "--skip-bad")) == 1
    err = capsys.readouterr().err
    assert "1 of 1 input(s) cannot be restored" in err and "None of the inputs can be restored" in err
    assert not (tmp_path / "out.png").exists()


def test_truncated_image_found_while_restoring(tiny_models, tmp_path, capsys):
    """A header that reads and pixels that do not: found while restoring, not before."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(src / f"im{i}.png")
    data = (src / "im1.png").read_bytes()
    (src / "im1.png").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert main(_argv(tiny_models, src, "-o", out)) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "im1.png" in err
    assert "1 of 3 image(s) were written" in err and "--resume --skip-bad" in err
    assert sorted(p.name for p in out.iterdir()) == ["im0.png"]
    # the suggested command restores the rest and names the bad one
    assert main(_argv(tiny_models, src, "-o", out, "--resume", "--skip-bad")) == 1
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["im0.png", "im2.png"]
    err_lines = captured.err.splitlines()
    assert any(line.startswith("warning: skipped: ") and "im1.png" in line for line in err_lines)
    assert err_lines[-1] == (f"error: restored 1 of 3 image(s) (1 restored before, --resume); skipped 1: "
                             f"{src / 'im1.png'} (reasons above).")
