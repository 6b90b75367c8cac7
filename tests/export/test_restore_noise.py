"""``restore --noise FILE.npy``: the start noise of each input's diffusion run (stacked in input
order, at the input's own size), optionally followed by the draws of the stochastic steps; a file
that does not fit is refused before anything is loaded, naming the shape it takes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fuzz._fuzz_helpers import assert_clean_failure, run_cli
from PIL import Image

import daclip_kit
from daclip_kit.core.pipeline import RestorationPipeline
from daclip_kit.errors import ConfigError, ShapeError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (21, 26, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def _restore(capsys, inputs, out, tiny_models, *extra):
    return run_cli(capsys, ["restore", *inputs, "-o", out, "--model", "irsde-unet", "--weights",
                            tiny_models["weights"], "--daclip-weights", tiny_models["daclip"], "--steps", "2",
                            "--device", "cpu", *extra])


def _pixels(path):
    with Image.open(path) as im:
        return np.asarray(im)


def test_noise_stacked_in_input_order_restores_each_input_with_its_own(tmp_path, capsys, inputs, tiny_models):
    noise = np.random.default_rng(1).standard_normal((2, 3, 21, 26)).astype(np.float32)
    np.save(tmp_path / "both.npy", noise)
    code, _, err = _restore(capsys, [inputs], tmp_path / "both", tiny_models, "--noise", tmp_path / "both.npy",
                            "--batch", "2")
    assert code == 0, err
    np.save(tmp_path / "b.npy", noise[1:])
    code, _, err = _restore(capsys, [inputs / "b.png"], tmp_path / "b.png", tiny_models, "--noise", tmp_path / "b.npy")
    assert code == 0, err
    assert np.array_equal(_pixels(tmp_path / "both" / "b.png"), _pixels(tmp_path / "b.png"))
    code, _, err = _restore(capsys, [inputs / "b.png"], tmp_path / "seeded.png", tiny_models)
    assert code == 0, err
    assert not np.array_equal(_pixels(tmp_path / "seeded.png"), _pixels(tmp_path / "b.png"))  # the file was used


@pytest.mark.parametrize("shape, needle", [
    ((1, 3, 21, 26), "2 input(s) take (2, 3, 21, 26) float32"),
    ((2, 3, 24, 28), "its noise must be (3, 21, 26) (the image's own size, not padded)"),
    ((2, 21, 26, 3), "(2, 3, 21, 26) float32"),
])
def test_a_noise_file_that_does_not_fit_names_the_expected_shape(tmp_path, capsys, inputs, tiny_models, shape, needle):
    np.save(tmp_path / "z.npy", np.zeros(shape, dtype=np.float32))
    code, _, err = _restore(capsys, [inputs], tmp_path / "out", tiny_models, "--noise", tmp_path / "z.npy")
    assert_clean_failure(code, err, "--noise", needle)
    assert not (tmp_path / "out").exists()


def test_noise_is_refused_for_integers_and_one_shot_networks(tmp_path, capsys, inputs, tiny_models):
    np.save(tmp_path / "int.npy", np.zeros((2, 3, 21, 26), dtype=np.int64))
    code, _, err = _restore(capsys, [inputs], tmp_path / "out", tiny_models, "--noise", tmp_path / "int.npy")
    assert_clean_failure(code, err, "int64", "standard-normal floats")
    net = daclip_kit.create_backbone("nafnet", width=8, middle_blk_num=1, enc_blk_nums=(1, 1), dec_blk_nums=(1, 1))
    folder = daclip_kit.save_network(net, tmp_path / "nafnet", name="nafnet")
    np.save(tmp_path / "z.npy", np.zeros((2, 3, 21, 26), dtype=np.float32))
    code, _, err = run_cli(capsys, ["restore", inputs, "-o", tmp_path / "out", "--model", "nafnet", "--weights",
                                    folder, "--device", "cpu", "--noise", tmp_path / "z.npy"])
    assert_clean_failure(code, err, "--noise is the start noise of a diffusion run", "one shot")


def test_the_pipeline_takes_the_start_noise_and_the_draws():
    net = daclip_kit.create_backbone("irsde-unet", nf=32, ch_mult=(1, 1), context_dim=0, use_degra_context=False,
                                     use_image_context=False).eval()
    pipe = RestorationPipeline(denoiser=net, sampler=daclip_kit.create_sampler("irsde", T=6))
    lq = torch.rand(1, 3, 13, 19)
    z = torch.randn(1, 7, 3, 13, 19)  # the start noise and the 6 posterior draws
    a = pipe(lq, noise=z, generator=torch.Generator().manual_seed(0)).image
    b = pipe(lq, noise=z, generator=torch.Generator().manual_seed(1)).image
    assert torch.equal(a, b)  # nothing drawn from the generator
    tiled = pipe(lq, noise=z, tile=32, tile_overlap=8).image  # tiles split network calls; the noise is whole-image
    assert torch.allclose(tiled, a, atol=1e-6)
    start_only = [pipe(lq, noise=z[:, 0], generator=torch.Generator().manual_seed(s)).image for s in (0, 1)]
    assert not torch.equal(*start_only)  # the later draws come from the generator
    with pytest.raises(ConfigError, match="holds 1 more tensor"):
        pipe(lq, noise=torch.randn(1, 8, 3, 13, 19))
    with pytest.raises(ShapeError, match=r"takes \(1, 3, 13, 19\) \(the images' own size, not padded\)"):
        pipe(lq, noise=torch.randn(1, 3, 16, 20))
