"""`daclip-kit restore` end to end on the CPU: tiny native models for behaviour, and once with
full-size official-format files (random weights)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from daclip_kit.cli.main import main
from daclip_kit.embedders.plugin import TINY_CLIP_CONFIG


def _save_png(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Native folders: a tiny DA-CLIP (embed_dim 32) and a tiny universal-style U-Net (context 32)
    with four levels, unlike the shared ``tiny_models``: its size divisor 8 makes every odd-sized
    input here go through padding and cropping."""
    from daclip_kit import create_backbone
    from daclip_kit.checkpoint import save_pretrained
    from daclip_kit.embedders.daclip.convert import save_daclip
    from daclip_kit.embedders.daclip.model import DaCLIP

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    daclip = DaCLIP.from_config(TINY_CLIP_CONFIG)
    save_daclip(daclip, root / "daclip")
    unet = create_backbone("irsde-unet", nf=32, ch_mult=(1, 1, 1, 1), context_dim=32)
    save_pretrained(unet, root / "unet", unet.export_config())
    return root / "unet", root / "daclip"


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "in"
    d.mkdir()
    _save_png(d / "rgb.png", rng.integers(0, 256, (37, 45, 3), dtype=np.uint8))
    _save_png(d / "gray16.png", (rng.integers(0, 65536, (20, 28))).astype(np.uint16))
    _save_png(d / "rgba.png", rng.integers(0, 256, (19, 33, 4), dtype=np.uint8), mode="RGBA")
    return d


def _restore(inputs, out, models, *extra):
    unet, daclip = models
    return main(["restore", *map(str, inputs), "-o", str(out), "--weights", str(unet),
                 "--daclip-weights", str(daclip), "--steps", "2", "--device", "cpu", *extra])


def test_restore_folder_keeps_sizes_and_modes(images, tmp_path, models, capsys):
    out = tmp_path / "out"
    assert _restore([images], out, models, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["sampler"] == "irsde" and len(summary["images"]) == 3
    assert summary["network"] == "irsde-unet" and summary["sampler_config"] == {}
    for name, size, mode in (("rgb", (45, 37), "RGB"), ("gray16", (28, 20), "I;16"), ("rgba", (33, 19), "RGBA")):
        with Image.open(out / f"{name}.png") as im:
            assert im.size == size and im.mode == mode
    assert not list(out.glob(".*"))  # no temporary files left


def _kind_inputs(folder):
    """Inputs of every kind an output keeps, with what each output must be."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    gray = rng.integers(0, 256, (21, 30), dtype=np.uint8)
    Image.fromarray(gray).save(folder / "gray.png")
    Image.fromarray(np.full((21, 30), 40000, dtype=np.uint16)).save(folder / "gray16.png")
    rgba = rng.integers(0, 256, (21, 30, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(folder / "rgba.png")
    la = np.stack([gray, rng.integers(0, 256, (21, 30), dtype=np.uint8)], axis=2)
    Image.fromarray(la, mode="LA").save(folder / "la.png")
    return {"rgba": rgba[..., 3], "la": la[..., 1]}


def test_outputs_keep_their_inputs_kind(tmp_path, models, capsys):
    alphas = _kind_inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert _restore([tmp_path / "in"], out, models) == 0
    capsys.readouterr()
    with Image.open(out / "gray.png") as im:
        assert im.mode == "L" and im.size == (30, 21)
    with Image.open(out / "gray16.png") as im:
        assert im.mode == "I;16" and im.size == (30, 21)
        values = np.asarray(im)
        # 16 bits really used: a 2-step restore of a flat image is not a multiple of 257 everywhere
        assert values.dtype == np.uint16 and (values % 257 != 0).any()
    with open(out / "gray16.png", "rb") as fh:
        assert fh.read(26)[24] == 16  # the PNG header's bit depth
    with Image.open(out / "rgba.png") as im:
        assert im.mode == "RGBA"
        assert np.array_equal(np.asarray(im)[..., 3], alphas["rgba"])
    with Image.open(out / "la.png") as im:
        assert im.mode == "LA"
        assert np.array_equal(np.asarray(im)[..., 1], alphas["la"])


def test_gray_output_is_the_luma_of_the_restored_rgb(tmp_path):
    from daclip_kit.io import ImageKind, write_image

    rgb = torch.tensor([[[0.2, 1.0]], [[0.6, 0.0]], [[1.0, 0.5]]])  # (3, 1, 2)
    write_image(tmp_path / "g.png", rgb, like=ImageKind(gray=True))
    write_image(tmp_path / "g16.png", rgb, like=ImageKind(gray=True, bits=16))
    luma = [0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 1.0, 0.299 * 1.0 + 0.114 * 0.5]
    assert np.asarray(Image.open(tmp_path / "g.png")).tolist() == [[round(v * 255) for v in luma]]
    assert np.asarray(Image.open(tmp_path / "g16.png")).tolist() == [[round(v * 65535) for v in luma]]


def test_a_format_without_alpha_gets_rgb_with_a_warning(tmp_path, caplog):
    from daclip_kit.io import ImageKind, write_image

    kind = ImageKind(alpha=np.zeros((4, 5), dtype=np.uint8))
    with caplog.at_level("WARNING"):
        write_image(tmp_path / "x.jpg", torch.rand(3, 4, 5), like=kind)
    assert Image.open(tmp_path / "x.jpg").mode == "RGB"
    assert "cannot hold a RGBA image; writing RGB" in caplog.text


def test_exif_rotated_jpeg_reports_the_restored_size(tmp_path, models, capsys):
    src = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 96x64, displayed (and restored) 64x96
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(src, exif=exif)
    assert _restore([src], tmp_path / "out.png", models) == 0
    assert Image.open(tmp_path / "out.png").size == (64, 96)
    assert "(64x96," in capsys.readouterr().out


def test_restore_is_deterministic_per_seed_and_tiling_matches(images, tmp_path, models):
    src = images / "rgb.png"
    runs = {}
    for name, extra in (("a", []), ("b", []), ("c", ["--seed", "1"]), ("tiled", ["--tile", "64"])):
        assert _restore([src], tmp_path / name, models, *extra) == 0
        runs[name] = np.asarray(Image.open(tmp_path / name / "rgb.png"), dtype=np.int16)
    assert np.array_equal(runs["a"], runs["b"])
    assert not np.array_equal(runs["a"], runs["c"])
    # one tile covering the whole image gives the untiled result (up to one grey level)
    assert np.abs(runs["a"] - runs["tiled"]).max() <= 1


def test_refuses_existing_output_and_input_as_output(images, tmp_path, models, capsys):
    out = tmp_path / "out"
    assert _restore([images / "rgb.png"], out, models) == 0
    before = (out / "rgb.png").read_bytes()
    capsys.readouterr()
    assert _restore([images / "rgb.png"], out, models) == 1
    assert "--overwrite to replace them" in capsys.readouterr().err
    assert (out / "rgb.png").read_bytes() == before
    assert _restore([images / "rgb.png"], out, models, "--overwrite", "--seed", "3") == 0
    # restoring a PNG into its own folder would overwrite the input: always refused
    assert _restore([images / "rgb.png"], images, models, "--overwrite") == 1
    assert "never overwritten" in capsys.readouterr().err


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: d / "missing.png", "does not exist"),
        (lambda d: (d / "broken.png").write_bytes(b"nope") and d / "broken.png", "Cannot read"),
    ],
)
def test_bad_inputs_are_clean_errors(tmp_path, models, capsys, setup, message):
    bad = setup(tmp_path)
    assert _restore([bad], tmp_path / "out", models) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_options(images, tmp_path, models, capsys):
    assert _restore([images], tmp_path / "o", models, "--batch", "0") == 1
    assert "--batch must be at least 1" in capsys.readouterr().err
    assert main(["restore", str(images), "-o", str(tmp_path / "o"), "--model", "irsde-univrsal"]) == 1
    assert "Did you mean: irsde-universal" in capsys.readouterr().err


def test_missing_named_weights_offline_say_where_to_put_them(images, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["restore", str(images), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "universal-ir.pth" in err and str(tmp_path / "cache") in err


def test_batched_restore_equals_single(tmp_path, models):
    rng = np.random.default_rng(1)
    d = tmp_path / "same"
    d.mkdir()
    for i in range(3):
        _save_png(d / f"im{i}.png", rng.integers(0, 256, (24, 30, 3), dtype=np.uint8))
    assert _restore([d], tmp_path / "b1", models, "--mode", "ode") == 0
    assert _restore([d], tmp_path / "b3", models, "--mode", "ode", "--batch", "3") == 0
    for i in range(3):
        a = np.asarray(Image.open(tmp_path / "b1" / f"im{i}.png"), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / "b3" / f"im{i}.png"), dtype=np.int16)
        assert np.abs(a - b).max() <= 1


def test_restore_with_full_size_official_files(tmp_path, capsys):
    """universal-ir.pth (plain state dict) + daclip_ViT-B-32.pt (training checkpoint, module.)."""
    from daclip_kit import create_backbone
    from daclip_kit.embedders.daclip.architectures import model_config
    from daclip_kit.embedders.daclip.model import DaCLIP

    torch.manual_seed(0)
    daclip = DaCLIP.from_config(model_config("daclip_ViT-B-32"))
    sd = {f"module.{k}": v for k, v in daclip.state_dict().items()}
    torch.save({"epoch": 30, "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}},
               tmp_path / "daclip_ViT-B-32.pt")
    del daclip, sd
    unet = create_backbone("irsde-unet")
    torch.save(unet.state_dict(), tmp_path / "universal-ir.pth")
    del unet
    src = _save_png(tmp_path / "lq.png", np.random.default_rng(2).integers(0, 256, (36, 52, 3), dtype=np.uint8))
    rc = main(["restore", str(src), "-o", str(tmp_path / "out"), "--weights", str(tmp_path / "universal-ir.pth"),
               "--daclip-weights", str(tmp_path / "daclip_ViT-B-32.pt"), "--steps", "2", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    with Image.open(tmp_path / "out" / "lq.png") as im:
        assert im.size == (52, 36)


def test_sampler_choices_come_from_the_sampler(images, tmp_path, models, capsys):
    assert _restore([images], tmp_path / "o", models, "--mode", "ddim") == 1
    err = capsys.readouterr().err
    assert "'ddim' is not one of ['posterior', 'sde', 'ode']" in err and "Traceback" not in err
    assert _restore([images], tmp_path / "o", models, "--sampler", "mrs", "--set", "sampler.order=5") == 1
    assert "order" in capsys.readouterr().err
    assert _restore([images], tmp_path / "o", models, "--sampler", "nosuch") == 1
    assert "Unknown sampler 'nosuch'" in capsys.readouterr().err


@pytest.mark.parametrize("sampler", ["mrs", "heun"])
def test_restore_with_the_fast_samplers(images, tmp_path, models, capsys, sampler):
    out = tmp_path / sampler
    assert _restore([images / "rgb.png"], out, models, "--sampler", sampler, "--steps", "3", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sampler"] == sampler and summary["steps"] == 3
    with Image.open(out / "rgb.png") as im:
        assert im.size == (45, 37)


def test_fast_pipeline_uses_mrs_with_ten_evaluations(images, tmp_path, models, capsys):
    from daclip_kit.pipelines.recipe import get_recipe

    fast, slow = get_recipe("irsde-universal-fast"), get_recipe("irsde-universal")
    assert (fast.sampler, fast.steps) == ("irsde", 10)
    assert (fast.backbone, fast.weights) == (slow.backbone, slow.weights)
    assert get_recipe("wild-ir-fast").backbone == "irsde-unet-wild"
    unet, daclip = models
    assert main(["restore", str(images / "rgb.png"), "-o", str(tmp_path / "o"), "--model", "irsde-universal-fast",
                 "--weights", str(unet), "--daclip-weights", str(daclip), "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["model"], summary["sampler"], summary["steps"]) == ("irsde-universal-fast", "irsde", 10)
