"""``restore --json`` reports NIQE and CLIP-IQA of each input and output (no ground truth needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from daclip_kit.cli.main import main
from daclip_kit.io import read_image
from daclip_kit.metrics import niqe

pytestmark = pytest.mark.usefixtures("one_thread")


def _restore_json(tiny_models, image, out, capsys, *extra: str) -> dict:
    capsys.readouterr()
    assert main(["restore", str(image), "-o", str(out), "--weights", str(tiny_models["weights"]), "--daclip-weights",
                 str(tiny_models["daclip"]), "--steps", "1", "--device", "cpu", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_the_no_reference_quality_of_input_and_output(tiny_models, tmp_path, capsys):
    rng = np.random.default_rng(1)
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    Image.fromarray(rng.integers(0, 256, size=(100, 200, 3), dtype=np.uint8)).save(big)
    Image.fromarray(rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)).save(small)
    record = _restore_json(tiny_models, big, tmp_path / "out", capsys)["images"][0]
    q = record["quality"]
    assert q["niqe"]["input"] == pytest.approx(float(niqe(read_image(big))[0]), abs=1e-4)
    assert q["niqe"]["output"] == pytest.approx(float(niqe(read_image(tmp_path / "out" / "big.png"))[0]), abs=1e-4)
    assert q["niqe"]["better"] == "lower" and q["clipiqa"]["better"] == "higher"
    assert 0 <= q["clipiqa"]["input"] <= 1 and 0 <= q["clipiqa"]["output"] <= 1
    tiny = _restore_json(tiny_models, small, tmp_path / "out2", capsys)["images"][0]["quality"]
    assert tiny["niqe"] == {"input": None, "output": None, "better": "lower"}  # under two 96 px blocks
    assert tiny["clipiqa"]["input"] is not None
    plain = _restore_json(tiny_models, small, tmp_path / "out3", capsys, "--no-quality")["images"][0]
    assert "quality" not in plain
