"""Restoring files: output planning, exclusive claims, resume, stale temporaries, streaming,
non-finite values, memory limits and torchrun."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import daclip_kit
from daclip_kit.cli.main import main
from daclip_kit.io import temporary_prefix, this_host

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def models(tiny_models):
    return tiny_models["weights"], tiny_models["daclip"]


def _images(folder, n=3, size=(20, 28), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    return folder


def _restore(models, *argv):
    unet, daclip = models
    return main(["restore", *map(str, argv), "--weights", str(unet), "--daclip-weights", str(daclip),
                 "--steps", "2", "--device", "cpu"])


def test_output_file_for_one_input_and_folder_otherwise(models, tmp_path, capsys):
    src = _images(tmp_path / "in", n=2)
    assert _restore(models, src / "im0.png", "-o", tmp_path / "one.png") == 0
    assert (tmp_path / "one.png").is_file() and not (tmp_path / "one.png").is_dir()
    assert _restore(models, src, "-o", tmp_path / "two.png") == 1
    assert "looks like a file name but there are 2 inputs" in capsys.readouterr().err
    assert _restore(models, src / "im1.png", "-o", tmp_path / "one.png" / "x") == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_unwritable_output_folder_is_refused_before_any_work(models, tmp_path, capsys):
    if os.geteuid() == 0:  # root writes anywhere: use a path under a file instead
        (tmp_path / "afile").write_text("x")
        target = tmp_path / "afile" / "out"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "out"
    assert _restore(models, _images(tmp_path / "in", n=1), "-o", target) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("not a folder" in err or "permission denied" in err)


def test_resume_skips_finished_outputs_and_restores_the_rest(models, tmp_path, capsys):
    src = _images(tmp_path / "in", n=3)
    out = tmp_path / "out"
    assert _restore(models, src / "im0.png", "-o", out / "im0.png") == 0
    first = (out / "im0.png").read_bytes()
    capsys.readouterr()
    assert _restore(models, src, "-o", out) == 1
    assert "--resume to skip them" in capsys.readouterr().err
    assert _restore(models, src, "-o", out, "--resume", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped"] == [str(out / "im0.png")]
    assert sorted(r["output"] for r in summary["images"]) == [str(out / "im1.png"), str(out / "im2.png")]
    assert (out / "im0.png").read_bytes() == first


def test_an_output_written_meanwhile_is_never_replaced(models, tmp_path):
    """Outputs are claimed by a hard link that fails on an existing name (a concurrent run's)."""
    from daclip_kit.io import OutputExistsError
    from daclip_kit.pipelines.build import build_pipeline
    from daclip_kit.pipelines.files import plan_outputs, restore_files

    unet, daclip = models
    src = _images(tmp_path / "in", n=2)
    jobs, _ = plan_outputs([src / "im0.png", src / "im1.png"], tmp_path / "out")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "im1.png").write_bytes(b"the other run's file")
    pipe = build_pipeline("irsde-universal", weights=unet, embedder_weights=daclip, device="cpu").pipeline
    with pytest.raises(OutputExistsError, match="was written meanwhile"):
        restore_files(pipe, jobs, options=pipe.options.__class__(steps=1), seed=0)
    assert (tmp_path / "out" / "im1.png").read_bytes() == b"the other run's file"
    assert (tmp_path / "out" / "im0.png").is_file()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_temporaries_of_killed_runs_are_removed(models, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = out / f".im0.png.999999999@{this_host()}.abcdef.tmp"
    dead.write_bytes(b"half")
    alive = out / f"{temporary_prefix('im0.png')}abcdef.tmp"
    alive.write_bytes(b"mine")
    assert _restore(models, _images(tmp_path / "in", n=1), "-o", out) == 0
    assert not dead.exists() and alive.exists()


def test_torchrun_a_failure_on_one_process_ends_every_process_with_its_message(models, tmp_path, torchrun):
    """Process 1 cannot write (OSError, not a daclip-kit error): process 0 does not wait for the
    collective timeout (2 hours) but ends within seconds, naming process 1's error."""
    import time
    from pathlib import Path

    src = _images(tmp_path / "in", n=4, size=(16, 20))
    unet, daclip = models
    failed_at = tmp_path / "failed-at"
    done = torchrun("restore", src, "-o", tmp_path / "out", "--weights", unet, "--daclip-weights", daclip,
                    "--steps", "2", "--device", "cpu", script=Path(__file__).parent / "_failing_rank.py",
                    env={"FAILED_AT": str(failed_at)}, timeout=240)
    ended = time.time()
    assert done.returncode != 0
    assert "error: No space left on device: " in done.stderr  # process 1's own line
    assert "error: process 1 of 2 failed: No space left on device: " in done.stderr, done.stderr[-3000:]
    assert ended - float(failed_at.read_text()) < 30, done.stderr[-3000:]


def test_streaming_decodes_in_workers_and_equals_in_process(models, tmp_path, capsys):
    src = _images(tmp_path / "in", n=4, size=(16, 20))
    assert _restore(models, src, "-o", tmp_path / "a", "--workers", "0", "--batch", "1") == 0
    assert _restore(models, src, "-o", tmp_path / "b", "--workers", "2", "--batch", "3") == 0
    for i in range(4):
        a = np.asarray(Image.open(tmp_path / "a" / f"im{i}.png"), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / "b" / f"im{i}.png"), dtype=np.int16)
        assert np.abs(a - b).max() <= 1  # batched convolutions round differently


def test_broken_image_found_while_streaming_is_one_line(models, tmp_path, capsys):
    src = _images(tmp_path / "in", n=2)
    data = (src / "im1.png").read_bytes()
    (src / "im1.png").write_bytes(data[: len(data) // 2])  # header fine, pixels truncated
    assert _restore(models, src, "-o", tmp_path / "out", "--workers", "2") == 1
    err = capsys.readouterr().err
    assert "im1.png" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_pixel_limit(models, tmp_path, capsys):
    src = _images(tmp_path / "in", n=1)
    assert _restore(models, src, "-o", tmp_path / "out", "--max-pixels", "100") == 1
    err = capsys.readouterr().err
    assert "above the limit" in err and "--max-pixels" in err
    assert not (tmp_path / "out").exists()


def test_non_finite_values_stop_the_run_and_write_nothing(tmp_path, capsys):
    from daclip_kit.core.pipeline import RestorationPipeline
    from daclip_kit.errors import InputError, NonFiniteError

    net = daclip_kit.create_backbone("irsde-unet-plain", nf=32, ch_mult=(1, 1)).eval()
    with torch.no_grad():
        net.final_conv.bias.fill_(float("nan"))
    pipe = RestorationPipeline(denoiser=net, sampler=daclip_kit.create_sampler("irsde", T=10))
    with pytest.raises(NonFiniteError, match="at step 1 of 3"):
        pipe(torch.rand(1, 3, 16, 16), steps=3)
    bad = torch.rand(1, 3, 16, 16)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        RestorationPipeline(denoiser=daclip_kit.create_backbone("irsde-unet-plain", nf=32, ch_mult=(1, 1)).eval(),
                            sampler=daclip_kit.create_sampler("irsde", T=10))(bad, steps=1)
    from daclip_kit.io import write_image

    with pytest.raises(InputError, match="NaN"):
        write_image(tmp_path / "x.png", bad)
    assert not (tmp_path / "x.png").exists()


def test_nan_weights_are_refused_at_load_and_allowed_ones_stop_at_the_first_step(tmp_path, capsys):
    net = daclip_kit.create_backbone("irsde-unet-plain", nf=32, ch_mult=(1, 1)).eval()
    with torch.no_grad():
        net.final_conv.bias.fill_(float("nan"))
    daclip_kit.save_network(net, tmp_path / "nan-net", name="irsde-unet-plain")
    src = _images(tmp_path / "in", n=1, size=(16, 16))
    argv = ["restore", str(src), "-o", str(tmp_path / "out"), "--model", "irsde-unet-plain", "--weights",
            str(tmp_path / "nan-net"), "--steps", "2", "--device", "cpu"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "non-finite weights" in err and "final_conv.bias" in err
    assert main([*argv, "--allow-nonfinite"]) == 1
    assert "at step 1 of 2" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.png"))  # nothing written


def test_automatic_tiling_under_a_memory_limit():
    from daclip_kit.core.pipeline import RestorationPipeline, RestoreOptions

    net = daclip_kit.create_backbone("irsde-unet-plain", nf=32, ch_mult=(1, 1)).eval()
    pipe = RestorationPipeline(denoiser=net, sampler=daclip_kit.create_sampler("irsde", T=10))
    whole = pipe.estimate_memory(1, 512, 512)
    tiled = pipe.estimate_memory(1, 512, 512, tile=128)
    assert tiled < whole
    assert pipe.estimate_memory(1, 1024, 1024) > 3 * whole  # grows with the pixels
    opts = RestoreOptions(max_memory=int(0.6 * whole / 0.8))
    tile = pipe.plan_tile(1, 512, 512, opts, torch.device("cpu"), "fp32")
    assert tile is not None and tile < 512 and tile % net.size_divisor == 0
    assert pipe.estimate_memory(1, 512, 512, tile=tile) <= opts.max_memory * 0.8
    assert pipe.plan_tile(1, 64, 64, opts, torch.device("cpu"), "fp32") is None
    with pytest.raises(daclip_kit.InputError, match="does not fit"):
        pipe.plan_tile(1, 512, 512, RestoreOptions(max_memory=1000), torch.device("cpu"), "fp32")


def test_a_4000x3000_image_restores_on_the_cpu_in_tiles_under_a_memory_limit(tmp_path, capsys):
    src = tmp_path / "big"
    src.mkdir()
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(small).resize((4000, 3000)).save(src / "big.png", compress_level=1)
    plain = tmp_path / "plain"
    daclip_kit.save_network(daclip_kit.create_backbone("irsde-unet-plain", nf=32, ch_mult=(1, 1)), plain,
                            name="irsde-unet-plain")
    assert main(["restore", str(src), "-o", str(tmp_path / "out"), "--model", "irsde-unet-plain",
                 "--weights", str(plain), "--steps", "1", "--device", "cpu", "--max-memory", "1.5G",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"][0]["size"] == [3000, 4000]
    with Image.open(tmp_path / "out" / "big.png") as im:
        assert im.size == (4000, 3000)


def test_torchrun_with_two_cpu_processes_writes_every_output_once(models, tmp_path, torchrun):
    src = _images(tmp_path / "in", n=5, size=(16, 20))
    unet, daclip = models
    out = tmp_path / "out"
    done = torchrun("restore", src, "-o", out, "--weights", unet, "--daclip-weights", daclip, "--steps", "2",
                    "--device", "cpu", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["processes"] == 2
    assert sorted(r["output"] for r in summary["images"]) == [str(out / f"im{i}.png") for i in range(5)]
    assert {r["rank"] for r in summary["images"]} == {0, 1}
    # the same images restored by one process give the same pixels (per-image seeds)
    assert _restore(models, src, "-o", tmp_path / "single") == 0
    for i in range(5):
        a = np.asarray(Image.open(out / f"im{i}.png"), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / "single" / f"im{i}.png"), dtype=np.int16)
        assert np.abs(a - b).max() <= 1
