"""``daclip-kit export``: writes the file atomically, refuses to overwrite without --overwrite,
reports inputs/outputs, and fails with one line on a bad model name."""

from __future__ import annotations

import json

import onnxruntime as ort
import pytest
from fuzz._fuzz_helpers import assert_clean_failure, run_cli

import daclip_kit
from daclip_kit.pretrained import save_network


@pytest.fixture(scope="module")
def nafnet_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nafnet") / "net"
    net = daclip_kit.create_backbone("nafnet", width=8, middle_blk_num=1, enc_blk_nums=(1, 1), dec_blk_nums=(1, 1))
    save_network(net, folder, name="nafnet")
    return folder


def test_export_writes_once_and_refuses_to_overwrite(tmp_path, capsys, nafnet_folder):
    out = tmp_path / "net.onnx"
    code, stdout, err = run_cli(capsys, ["export", "nafnet", "--weights", nafnet_folder, "-o", out, "--json"])
    assert code == 0, err
    result = json.loads(stdout)
    assert result["inputs"] == ["lq"] and result["outputs"] == ["restored"] and result["graph"] == "backbone"
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_modelmeta().custom_metadata_map["daclip_kit.model"] == "nafnet"
    before = out.read_bytes()
    code, _, err = run_cli(capsys, ["export", "nafnet", "--weights", nafnet_folder, "-o", out, "--format", "onnx"])
    assert_clean_failure(code, err, "already exists", "--overwrite")
    assert out.read_bytes() == before
    code, _, err = run_cli(capsys, ["export", "nafnet", "--weights", nafnet_folder, "-o", out, "--overwrite",
                                    "--format", "torchscript"])
    assert code == 0, err
    assert out.read_bytes() != before  # replaced (now a TorchScript archive)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]  # no temporaries left


def test_export_unknown_model_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, ["export", "nafnett", "-o", tmp_path / "x.onnx"])
    assert_clean_failure(code, err, "nafnett")
    assert not (tmp_path / "x.onnx").exists()


def test_export_output_folder_is_refused(tmp_path, capsys, nafnet_folder):
    code, _, err = run_cli(capsys, ["export", "nafnet", "--weights", nafnet_folder, "-o", tmp_path])
    assert_clean_failure(code, err, "is a folder")
