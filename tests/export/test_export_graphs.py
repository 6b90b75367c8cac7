"""Exported graphs (ONNX under ONNX Runtime, TorchScript, torch.export) equal the PyTorch networks
run the pipeline's way (padded to the size divisor, cropped back) at sizes that are not
multiples of the divisor, with other batch sizes than the export's."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

import daclip_kit
from daclip_kit.embedders.plugin import TINY_CLIP_CONFIG
from daclip_kit.export import export_network, pad_to_divisor, unflatten
from daclip_kit.ops.padding import pad_to_multiple, padded_call
from daclip_kit.plugins import get_registry
from daclip_kit.samplers.mrs.schedule import make_mr_schedule
from daclip_kit.types import Conditioning

TOL = 1e-4
#: (height, width, batch): the first is not a multiple of any divisor, the second is of 8 only
SIZES = ((37, 45, 1), (40, 24, 3))


def _tiny(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return daclip_kit.create_backbone(name, **dict(get_registry("backbones").get(name).tiny_config)).eval()


def _session(path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _backbone_ref(net, lq, cond=None):
    with torch.no_grad():
        return padded_call(lambda x: net(x, cond), (lq,), net.size_divisor, net.pad_mode).numpy()


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_graph_padding_equals_the_pipeline_rule(mode):
    x = torch.rand(2, 3, 21, 13)
    for h, w in ((21, 13), (5, 3), (16, 16), (9, 30), (1, 7)):
        part = x[:, :, :h, :w]
        for divisor in (1, 8, 16):
            got = pad_to_divisor(part, divisor, mode)
            assert torch.equal(got, pad_to_multiple(part, divisor, mode)), (h, w, divisor)


@pytest.mark.parametrize("name", ["nafnet", "restormer", "promptir", "airnet"])
def test_onnx_backbone_parity(tmp_path, name):
    net = _tiny(name)
    path = tmp_path / f"{name}.onnx"
    plan = export_network(name, net, path, "onnx", kind="backbone")
    sess = _session(path)
    assert [i.name for i in sess.get_inputs()] == ["lq"]
    meta = unflatten(sess.get_modelmeta().custom_metadata_map)
    assert meta["model"] == name and meta["graph"] == "backbone" and meta["padding"] == "inside"
    assert meta["size_divisor"] == net.size_divisor and meta["exporter"] == plan.meta["exporter"]
    if name != "airnet":
        assert net.size_divisor > 1  # so the sizes below exercise the padding
    for h, w, b in SIZES:
        lq = torch.rand(b, 3, h, w)
        (out,) = sess.run(None, {"lq": lq.numpy()})
        ref = _backbone_ref(net, lq)
        assert out.shape == ref.shape == (b, 3, h, w)
        assert np.abs(out - ref).max() < TOL, (name, h, w)


def test_onnx_conditioned_backbone_takes_embeddings_in_role_order(tmp_path):
    net = _tiny("nafnet-daclip")
    path = tmp_path / "nd.onnx"
    export_network("nafnet-daclip", net, path, "onnx", kind="backbone")
    sess = _session(path)
    assert [i.name for i in sess.get_inputs()] == ["lq", "degradation", "content"]
    for h, w, b in SIZES:
        lq, deg, con = torch.rand(b, 3, h, w), torch.randn(b, 32), torch.randn(b, 32)
        (out,) = sess.run(None, {"lq": lq.numpy(), "degradation": deg.numpy(), "content": con.numpy()})
        ref = _backbone_ref(net, lq, Conditioning(degradation=deg, content=con))
        assert np.abs(out - ref).max() < TOL


@pytest.fixture(scope="module")
def tiny_unet():
    torch.manual_seed(0)
    return daclip_kit.create_backbone("irsde-unet", nf=32, ch_mult=(1, 1, 2), context_dim=32).eval()


def _denoiser_inputs(b, h, w, t=37.5):
    return (torch.rand(b, 3, h, w), torch.rand(b, 3, h, w), torch.full((b,), t), torch.randn(b, 32),
            torch.randn(b, 32))


def _denoiser_ref(net, x, lq, t, deg, con):
    with torch.no_grad():
        return padded_call(lambda a, c: net(a, c, t, degradation=deg, content=con), (x, lq),
                           net.size_divisor, net.pad_mode).numpy()


def test_onnx_denoiser_parity_and_sampler_metadata(tmp_path, tiny_unet):
    path = tmp_path / "den.onnx"
    trained = {"name": "irsde", "config": {"max_sigma": 30, "T": 50, "mode": "posterior"}}
    export_network("irsde-unet", tiny_unet, path, "onnx", kind="denoiser", sampler=trained)
    sess = _session(path)
    names = [i.name for i in sess.get_inputs()]
    assert names == ["x_t", "lq", "t", "degradation", "content"]
    for (h, w, b), t in zip(SIZES, (37.5, 3.0), strict=True):
        inputs = _denoiser_inputs(b, h, w, t)
        (out,) = sess.run(None, {n: v.numpy() for n, v in zip(names, inputs, strict=True)})
        ref = _denoiser_ref(tiny_unet, *inputs)
        assert out.shape == (b, 3, h, w)
        assert np.abs(out - ref).max() < TOL
    meta = unflatten(sess.get_modelmeta().custom_metadata_map)
    assert [i["role"] for i in meta["inputs"]] == ["state", "lq", "time", "degradation", "content"]
    assert meta["sde"]["max_sigma"] == 30 and meta["sde"]["T"] == 50  # the trained SDE, not the default
    assert meta["sampler"] == {"name": "irsde", "config": {"max_sigma": 30, "T": 50, "schedule": "cosine",
                                                          "eps": 0.005, "mode": "posterior"}}
    assert meta["steps"] == 50
    sched = make_mr_schedule(30 / 255, 50, "cosine", 0.005, keep_theta_0=False)  # the SDE irsde runs on
    assert np.array_equal(np.float32(meta["mr_schedule"]["alpha"]), sched.alpha_array.numpy())
    assert np.array_equal(np.float32(meta["mr_schedule"]["sigma"]), sched.sigma_array.numpy())


def test_onnx_encoder_parity(tmp_path):
    torch.manual_seed(0)
    emb = daclip_kit.create_embedder("daclip", model_config=TINY_CLIP_CONFIG, device="cpu")
    path = tmp_path / "enc.onnx"
    export_network("daclip", emb.model, path, "onnx", kind="encoder")
    sess = _session(path)
    assert [o.name for o in sess.get_outputs()] == ["content", "degradation"]
    meta = unflatten(sess.get_modelmeta().custom_metadata_map)
    assert meta["preprocess"]["image_size"] == 32
    for b, (h, w) in ((1, (37, 45)), (3, (64, 50))):
        images = torch.rand(b, 3, h, w)
        pixels = emb.preprocess(images)
        content, degradation = sess.run(None, {"pixels": pixels.numpy()})
        with torch.no_grad():
            ref = emb.embed_image(images)
        assert np.abs(content - ref.content.numpy()).max() < TOL
        assert np.abs(degradation - ref.degradation.numpy()).max() < TOL


def test_torchscript_parity(tmp_path, tiny_unet):
    net = _tiny("nafnet")
    path = tmp_path / "nafnet.pt"
    export_network("nafnet", net, path, "torchscript", kind="backbone")
    extra = {"daclip_kit.json": ""}
    loaded = torch.jit.load(str(path), _extra_files=extra)
    assert unflatten(json.loads(extra["daclip_kit.json"]))["size_divisor"] == net.size_divisor
    for h, w, b in SIZES:
        lq = torch.rand(b, 3, h, w)
        with torch.no_grad():
            assert np.abs(loaded(lq).numpy() - _backbone_ref(net, lq)).max() < TOL
    path = tmp_path / "den.pt"
    export_network("irsde-unet", tiny_unet, path, "torchscript", kind="denoiser")
    loaded = torch.jit.load(str(path))
    for h, w, b in SIZES:
        inputs = _denoiser_inputs(b, h, w)
        with torch.no_grad():
            assert np.abs(loaded(*inputs).numpy() - _denoiser_ref(tiny_unet, *inputs)).max() < TOL


def test_exported_program_parity(tmp_path):
    net = _tiny("nafnet")
    path = tmp_path / "nafnet.pt2"
    export_network("nafnet", net, path, "exported", kind="backbone")
    extra = {"daclip_kit.json": ""}
    program = torch.export.load(str(path), extra_files=extra)
    assert unflatten(json.loads(extra["daclip_kit.json"]))["model"] == "nafnet"
    module = program.module()
    for h, w, b in SIZES:
        lq = torch.rand(b, 3, h, w)
        with torch.no_grad():
            assert np.abs(module(lq).numpy() - _backbone_ref(net, lq)).max() < TOL
