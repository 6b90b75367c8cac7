"""examples/onnx_restore.py restores with the exported encoder and denoiser, ONNX Runtime and NumPy
only (torch never imported), and matches daclip-kit's own torch restore with the same settings: by
default the sampler the denoiser's metadata records (a teacher's IR-SDE posterior, a distilled
student's K-step MRS), with the start noise (and the stochastic steps' draws) of
``restore --noise FILE.npy``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import daclip_kit
from daclip_kit.cli.main import main
from daclip_kit.io import read_image
from daclip_kit.types import Conditioning

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "onnx_restore.py"
#: Runs the example as a script, then fails if any module of torch was imported.
GUARD = ("import runpy, sys; sys.argv = sys.argv[1:]; "
         "code = 0\ntry:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
         "except SystemExit as exc:\n    code = exc.code\n"
         "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
         "assert not bad, f'torch imported: {bad[:5]}'\nsys.exit(code)")


@pytest.fixture(scope="module")
def exported(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx-example")
    assert main(["export", "daclip", "--weights", str(tiny_models["daclip"]), "-o", str(folder / "enc.onnx")]) == 0
    assert main(["export", "irsde-unet", "--weights", str(tiny_models["weights"]),
                 "-o", str(folder / "den.onnx")]) == 0
    rng = np.random.default_rng(3)
    smooth = np.kron(rng.random((6, 7, 3)), np.ones((7, 7, 1)))[:37, :45]  # 37 x 45: not a multiple of 4
    Image.fromarray((smooth * 255).astype(np.uint8)).save(folder / "lq.png")
    np.save(folder / "noise.npy", rng.standard_normal((1, 3, 37, 45)).astype(np.float32))
    return folder


def _torch_restore(tiny_models, folder, order: int, weights=None) -> np.ndarray:
    emb = daclip_kit.create_embedder("daclip", weights=str(tiny_models["daclip"]), quantize_input=True,
                                     device="cpu")
    net = daclip_kit.load_network("irsde-unet", weights or tiny_models["weights"])
    mrs = daclip_kit.create_sampler("mrs", order=order)
    lq = read_image(folder / "lq.png")
    noise = torch.from_numpy(np.load(folder / "noise.npy"))
    with torch.no_grad():
        cond = Conditioning.from_embedding(emb.embed_image(lq))
        out = daclip_kit.sample(net, mrs, lq, cond, steps=10, x_T=lq + mrs.max_sigma * noise)
    return out.clamp(0, 1).numpy()


@pytest.mark.parametrize("order", [1, 2])
def test_example_matches_the_torch_restore_without_importing_torch(tiny_models, exported, order):
    out = exported / f"restored-{order}.npy"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", GUARD, str(EXAMPLE), str(exported / "lq.png"),
                          "--encoder", str(exported / "enc.onnx"), "--denoiser", str(exported / "den.onnx"),
                          "--noise", str(exported / "noise.npy"), "--sampler", "mrs", "--order", str(order),
                          "--threads", "1",
                          "-o", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    got = np.load(out)
    ref = _torch_restore(tiny_models, exported, order)
    assert got.shape == ref.shape == (1, 3, 37, 45)
    assert np.abs(got - ref).max() < 1e-4  # measured: about 1e-5
    assert np.abs(got - read_image(exported / "lq.png").numpy()).max() > 0.05  # the sampler did change it


def test_example_writes_a_png(exported):
    out = exported / "restored.png"
    run = subprocess.run([sys.executable, str(EXAMPLE), str(exported / "lq.png"), "--encoder",
                          str(exported / "enc.onnx"), "--denoiser", str(exported / "den.onnx"), "--steps", "5",
                          "-o", str(out)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    with Image.open(out) as im:
        assert im.size == (45, 37) and im.mode == "RGB"
    assert [p.name for p in exported.iterdir() if p.name.startswith(".")] == []


def test_example_runs_a_clean_predicting_denoiser(tiny_models, exported, tmp_path):
    """A network with prediction = "clean" exports its clean output; the example turns it into noise
    through the schedule in the metadata and matches the torch restore."""
    from daclip_kit.pretrained import native_info

    noise_net = daclip_kit.load_network("irsde-unet", tiny_models["weights"])
    config = {**noise_net.export_config(), "prediction": "clean"}
    clean_net = daclip_kit.create_backbone("irsde-unet", **config)
    clean_net.load_state_dict(noise_net.state_dict())
    folder = daclip_kit.save_network(clean_net, tmp_path / "clean", name="irsde-unet", config=config,
                                     sampler=native_info(tiny_models["weights"]).sampler)
    assert main(["export", "irsde-unet", "--weights", str(folder), "-o", str(tmp_path / "clean.onnx")]) == 0
    out = tmp_path / "restored.npy"
    run = subprocess.run([sys.executable, str(EXAMPLE), str(exported / "lq.png"),
                          "--encoder", str(exported / "enc.onnx"),
                          "--denoiser", str(tmp_path / "clean.onnx"), "--noise", str(exported / "noise.npy"),
                          "--sampler", "mrs", "--threads", "1", "-o", str(out)], capture_output=True, text=True,
                         timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    ref = _torch_restore(tiny_models, exported, 2, weights=folder)
    assert np.abs(np.load(out) - ref).max() < 1e-4
    assert np.abs(ref - _torch_restore(tiny_models, exported, 2)).max() > 0.05  # read as clean, not as noise


#: The exact tolerance docs/export.md states between the example and ``restore --noise`` (float32 outputs).
TOL = 1e-4
#: A teacher as `train restoration` saves it (a short SDE keeps the test fast) and a 2-step student of it
#: (the sampler `train distill` saves, distill_config.student_sampler).
TEACHER_SDE = {"max_sigma": 30.0, "T": 12, "schedule": "cosine", "eps": 0.005}


def _record(kind: str) -> dict:
    if kind == "teacher":
        return {"name": "irsde", "config": dict(TEACHER_SDE)}
    from daclip_kit.train.distill_config import student_sampler

    return student_sampler({**TEACHER_SDE, "T": 100}, 2, 0.0)


@pytest.mark.parametrize("kind", ["teacher", "student"])
def test_example_runs_the_recorded_sampler_as_restore_does_with_the_same_noise(tiny_models, exported, tmp_path,
                                                                               kind):
    """`restore --noise FILE` and the example given the same FILE restore the same image (TOL on the
    float output, one 8-bit level on the PNGs), with the sampler the model folder records: a teacher's
    IR-SDE posterior over all T steps (its per-step draws in the file too), a student's 2 MRS steps."""
    from daclip_kit.pipelines.build import build_pipeline
    from daclip_kit.pretrained import native_info

    net = daclip_kit.load_network("irsde-unet", tiny_models["weights"])
    folder = daclip_kit.save_network(net, tmp_path / kind, name="irsde-unet",
                                     config=native_info(tiny_models["weights"]).config, sampler=_record(kind))
    assert main(["export", "irsde-unet", "--weights", str(folder), "-o", str(tmp_path / "den.onnx")]) == 0
    built = build_pipeline("irsde-unet", weights=folder, embedder_weights=tiny_models["daclip"], device="cpu",
                           download=False)
    evaluations = built.pipeline.evaluations()
    assert evaluations == (12 if kind == "teacher" else 2)
    rng = np.random.default_rng(5)
    shape = (1, 1 + evaluations, 3, 37, 45) if kind == "teacher" else (1, 3, 37, 45)  # posterior: a draw per step
    np.save(tmp_path / "noise.npy", rng.standard_normal(shape).astype(np.float32))
    lq = read_image(exported / "lq.png")
    with torch.no_grad():
        ref = built.pipeline(lq, noise=torch.from_numpy(np.load(tmp_path / "noise.npy"))).image.numpy()

    out = tmp_path / "example.npy"
    run = subprocess.run([sys.executable, "-c", GUARD, str(EXAMPLE), str(exported / "lq.png"),
                          "--encoder", str(exported / "enc.onnx"), "--denoiser", str(tmp_path / "den.onnx"),
                          "--noise", str(tmp_path / "noise.npy"), "--threads", "1", "-o", str(out)],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    got = np.load(out)
    assert got.shape == ref.shape == (1, 3, 37, 45)
    assert np.abs(got - ref).max() < TOL
    assert np.abs(ref - lq.numpy()).max() > 0.05  # the sampler did change it

    pngs = []
    for seed in ("0", "7"):  # the noise file fixes the run: the seed no longer matters
        png = tmp_path / f"restored-{seed}.png"
        assert main(["restore", str(exported / "lq.png"), "-o", str(png), "--model", "irsde-unet", "--weights",
                     str(folder), "--daclip-weights", str(tiny_models["daclip"]), "--device", "cpu",
                     "--noise", str(tmp_path / "noise.npy"), "--seed", seed]) == 0
        with Image.open(png) as im:
            pngs.append(np.asarray(im, dtype=np.int16))
    assert np.array_equal(pngs[0], pngs[1])
    mine = np.round(got[0].transpose(1, 2, 0) * 255).astype(np.int16)
    assert np.abs(pngs[0] - mine).max() <= 1  # TOL in float, rounded to 8 bits


def test_example_refuses_what_it_does_not_implement():
    import runpy

    run_settings = runpy.run_path(str(EXAMPLE))["run_settings"]
    sde = {"max_sigma": 50.0, "T": 100, "schedule": "cosine", "eps": 0.005}
    heun = {"sampler": {"name": "heun", "config": {**sde, "solver_type": "sde"}}, "sde": sde}
    with pytest.raises(SystemExit, match="sampler is 'heun'; this example implements irsde and mrs"):
        run_settings(heun)
    assert run_settings(heun, "mrs") == ("mrs", {**runpy.run_path(str(EXAMPLE))["MRS_DEFAULTS"], **sde})
    with pytest.raises(SystemExit, match="--order is the order of the mrs solver"):
        run_settings({"sampler": {"name": "irsde", "config": sde}, "sde": sde}, order=2)
