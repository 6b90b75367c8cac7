"""``daclip-kit adapt``: two folders of pairs to one model that every verb takes, with its report.

The base model is a tiny random U-Net + DA-CLIP tied by a model index (a stand-in for the released
pair); the data root has three known degradations; the user's degradation is a global colour cast.
Training is a few steps: these tests check that the parts compose (data, both runs, the model folder,
its calibration, the report, the verbs), not how well a few steps restore (benchmarks/bench_adapt.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daclip_kit.adapt.report import forgetting
from daclip_kit.cli.main import main

KNOWN = ("noisy", "hazy", "low-light")
CAST = np.array([[0.9, 0.1, 0.0], [0.0, 0.6, 0.1], [0.1, 0.0, 0.5]])


def _cast_pairs(clean: list[Path], folder: Path) -> tuple[Path, Path]:
    lq, gt = folder / "lq", folder / "gt"
    lq.mkdir(parents=True)
    gt.mkdir(parents=True)
    for i, path in enumerate(clean):
        x = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
        y = np.clip(x @ CAST.T + [0.15, 0.05, 0.0], 0, 1)
        Image.fromarray((x * 255).round().astype(np.uint8)).save(gt / f"pair{i}.png")
        Image.fromarray((y * 255).round().astype(np.uint8)).save(lq / f"pair{i}.png")
    return lq, gt


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A data root of three known degradations, a base model folder and the user's two folders."""
    from daclip_kit.data.mini import build_mini
    from daclip_kit.demo.tiny import write_tiny_models
    from daclip_kit.model.unit import write_index

    work = tmp_path_factory.mktemp("adapt")
    build_mini(work / "root", size=32, per_type=2, val_per_type=1, composed=0, types=KNOWN, seed=0)
    unet, daclip = write_tiny_models(work / "tiny")
    base = work / "base"
    shutil.copytree(unet, base / "network-ema")
    shutil.copytree(daclip, base / "daclip")
    write_index(base / "model_index.json", "network-ema", "daclip")
    clean = sorted((work / "root").glob("*/*/GT/*.png"))[:6]
    lq, gt = _cast_pairs(clean, work / "user")
    return {"work": work, "root": work / "root", "base": base, "lq": lq, "gt": gt}


def _adapt(world: dict[str, Path], root: Path, out: Path, *extra: str) -> int:
    return main(["adapt", "cast", "--lq", str(world["lq"]), "--gt", str(world["gt"]), "--from", str(world["base"]),
                 "--data", str(root), "--out", str(out), "--steps", "4", "--daclip-steps", "2", "--eval-steps", "1",
                 "--eval-limit", "1", "--val", "2", "--device", "cpu", "--captions", "none",
                 "--restorer-set", "validation.count=2", *extra])


@pytest.fixture(scope="module")
def adapted(world, tmp_path_factory) -> tuple[Path, Path, int]:
    """``adapt`` run once (its own copy of the data root): ``(OUT, ROOT, exit status)``."""
    root = tmp_path_factory.mktemp("adapt-root") / "root"
    shutil.copytree(world["root"], root)
    out = tmp_path_factory.mktemp("adapt-out") / "cast-model"
    code = _adapt(world, root, out)
    return out, root, code


def test_out_is_one_model_with_its_report(adapted):
    out, root, code = adapted
    assert code in (0, 1)  # 1: written, but a known degradation was lost (a few random-start steps)
    index = json.loads((out / "model_index.json").read_text())
    assert index["restorer"] == "network-ema" and index["daclip"] == "daclip"
    restorer = json.loads((out / "network-ema" / "config.json").read_text())
    assert restorer["daclip"]["weights"] == "../daclip"
    daclip = json.loads((out / "daclip" / "config.json").read_text())
    assert set(daclip["config"]["degradations"]) == {*KNOWN, "cast"}
    assert daclip["config"]["ood"]["labels"] == daclip["config"]["degradations"]  # calibrated on the new words
    report = json.loads((out / "report.json").read_text())
    assert set(report["known"]) == set(KNOWN)
    for row in [report["new"], *report["known"].values()]:
        assert set(row) >= {"input", "before", "after"} and 0 < row["after"]["psnr"] < 100
    assert report["forgetting"]["ok"] == (code == 0)
    assert report["preflight"]["plan"]["objective"] in ("noise", "clean")
    assert "cast" in report["naming"]["after"]["words"] and "cast" not in report["naming"]["before"]["words"]
    assert (root / "train" / "cast" / "LQ").is_dir() and (root / "val" / "cast" / "LQ").is_dir()
    assert (out / "runs" / "daclip").is_dir() and (out / "runs" / "restorer" / "config.toml").is_file()


def test_every_verb_takes_out_as_it_is(adapted, world, tmp_path, capsys):
    from daclip_kit.hub.folders import plan_push
    from daclip_kit.model import resolve_model

    out, _, _ = adapted
    unit = resolve_model(out)
    assert unit.kind == "model" and unit.daclip is not None and unit.daclip.path == (out / "daclip").resolve()
    assert unit.words is not None and "cast" in unit.words and unit.calibration is not None
    capsys.readouterr()
    assert main(["restore", str(world["lq"] / "pair0.png"), "-o", str(tmp_path / "r"), "--weights", str(out),
                 "--steps", "1", "--device", "cpu"]) == 0
    assert (tmp_path / "r" / "pair0.png").is_file()
    capsys.readouterr()
    assert main(["classify", str(world["lq"] / "pair0.png"), "--weights", str(out), "--json", "--device", "cpu",
                 "--top-k", "20"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert "cast" in {t["label"] for row in rows for t in row["top_k"]}
    assert rows[0]["unknown_degradation"] in (True, False)  # calibrated: a verdict, not null
    plan = plan_push(out)
    assert {m.repo_path for m in plan.models} == {"network-ema", "daclip"} and plan.index is not None
    assert "runs" in plan.skipped and "report.json" in plan.skipped


def test_choices_can_be_overridden_and_are_recorded(world, tmp_path):
    from daclip_kit.config import tomllib

    root = tmp_path / "root"
    shutil.copytree(world["root"], root)
    out = tmp_path / "out"
    _adapt(world, root, out, "--objective", "noise", "--init", "continue", "--lr", "3e-4", "--new-share", "0.5",
           "--eval-limit", "1")
    plan = json.loads((out / "report.json").read_text())["preflight"]["plan"]
    assert (plan["objective"], plan["init"], plan["lr"], plan["new_share"]) == ("noise", "continue", 3e-4, 0.5)
    cfg = tomllib.loads((out / "runs" / "restorer" / "config.toml").read_text())
    assert cfg["optim"]["lr"] == 3e-4 and cfg["data"]["new_share"] == 0.5
    assert Path(cfg["init_from"]).resolve() == (world["base"] / "network-ema").resolve()
    assert sorted(cfg["data"]["degradations"]) == sorted([*KNOWN, "cast"])


def test_refusals_name_the_problem_and_write_nothing(world, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(world["root"], root)
    assert main(["adapt", "noisy", "--lq", str(world["lq"]), "--gt", str(world["gt"]), "--from", str(world["base"]),
                 "--data", str(root), "--out", str(tmp_path / "o1"), "--device", "cpu"]) == 1
    assert "'noisy' is already one of the model's degradation words" in capsys.readouterr().err
    foreign = tmp_path / "o2"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert _adapt(world, root, foreign) == 1
    assert "holds files that adapt did not write (notes.txt)" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "mine"
    assert main(["adapt", "cast", "--lq", str(world["lq"]), "--gt", str(world["gt"]),
                 "--from", str(world["base"] / "daclip"), "--data", str(root), "--out", str(tmp_path / "o3")]) == 1
    assert "is a DA-CLIP alone" in capsys.readouterr().err
    assert main(["adapt", "cast", "--lq", str(world["lq"]), "--gt", str(world["gt"]), "--from", str(world["base"]),
                 "--data", str(root), "--out", str(tmp_path / "o4"), "--val-fraction", "0.99"]) == 1
    assert "would leave none for training" in capsys.readouterr().err  # data add's own split of the pairs
    assert not (root / "train" / "cast").exists()  # refused before the data was touched
    assert not any((tmp_path / o).exists() for o in ("o1", "o3", "o4"))


def test_forgetting_names_what_was_lost_and_by_how_much():
    inputs = {"noisy": {"psnr": 15.0}, "hazy": {"psnr": 12.0}, "rainy": {"psnr": 20.0}}
    before = {"noisy": {"psnr": 20.0}, "hazy": {"psnr": 18.0}, "rainy": {"psnr": 24.0}}
    after = {"noisy": {"psnr": 19.2}, "hazy": {"psnr": 16.5}, "rainy": {"psnr": 19.5}}
    result = forgetting(inputs, before, after)
    assert not result["ok"]
    lost = {row["degradation"]: row for row in result["lost"]}
    assert set(lost) == {"hazy", "rainy"}  # noisy: 0.8 dB down, within the 1 dB
    assert lost["hazy"]["drop"] == pytest.approx(1.5) and "1.50 dB below the base model" in lost["hazy"]["why"]
    assert "not above its input" in lost["rainy"]["why"]
    assert forgetting(inputs, before, before)["ok"]


def test_the_restorer_is_judged_on_what_it_was_trained_on():
    """A run records the degradations its restorer learnt: those are replayed and checked; a model that
    does not say (the released ones) is checked on every word of its DA-CLIP."""
    from daclip_kit.adapt.workflow import _trained_on

    words = ("motion-blurry", "hazy", "noisy")
    assert _trained_on({"data": {"degradations": ["noisy"], "root": "x"}}, words) == ("noisy",)
    assert _trained_on({}, words) == words
    assert _trained_on({"data": {"degradations": ["banding"]}}, words) == words  # none of its words: all
