"""``daclip-kit degrade``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from daclip_kit import DEGRADATIONS
from daclip_kit.cli.main import main


def photo(path, size=(40, 56)):
    rng = np.random.default_rng(0)
    arr = (rng.random((size[0], size[1], 3)) * 200 + 30).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


def test_writes_one_png_per_official_type(tmp_path):
    img = photo(tmp_path / "in.png")
    before = img.read_bytes()
    out = tmp_path / "out"
    assert main(["degrade", str(img), "-o", str(out), "--seed", "3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.png" for t in DEGRADATIONS)
    for t in DEGRADATIONS:
        with Image.open(out / f"{t}.png") as im:
            assert im.size == (56, 40) and im.mode == "RGB"
    assert img.read_bytes() == before


def test_same_seed_same_files_different_seed_differs(tmp_path):
    img = photo(tmp_path / "in.png")
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert main(["degrade", str(img), "-o", str(tmp_path / name), "--types", "noisy,hazy", "--seed", seed]) == 0
    a, b, c = ((tmp_path / n / "noisy.png").read_bytes() for n in "abc")
    assert a == b and a != c


def test_compose_with_types_writes_one_multi_label_image(tmp_path, capsys):
    img = photo(tmp_path / "in.png")
    out = tmp_path / "out"
    assert main(["degrade", str(img), "-o", str(out), "--types", "noisy,hazy", "--compose", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert [r["degradations"] for r in rec] == [["hazy", "noisy"]]
    assert (out / "hazy+noisy.png").is_file()


def test_random_compositions_and_several_inputs(tmp_path, capsys):
    a, b = photo(tmp_path / "a.png"), photo(tmp_path / "b.png")
    out = tmp_path / "out"
    assert main(["degrade", str(a), str(b), "-o", str(out), "--compose", "--num-composed", "2", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert len(rec) == 4 and all(2 <= len(r["degradations"]) <= 3 for r in rec)
    assert {p.name for p in out.iterdir()} == {"a", "b"}


def test_options_errors_and_no_overwrite(tmp_path, capsys):
    img = photo(tmp_path / "in.png")
    out = tmp_path / "out"
    assert main(["degrade", str(img), "-o", str(out), "--types", "noisy", "--set", "noisy.sigma=5"]) == 0
    residual = np.asarray(Image.open(out / "noisy.png"), np.float32) - np.asarray(Image.open(img), np.float32)
    assert residual.std() < 10
    assert main(["degrade", str(img), "-o", str(out), "--types", "noisy"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["degrade", str(img), "-o", str(out), "--types", "nosy"]) == 1
    assert "Did you mean" in capsys.readouterr().err
    assert main(["degrade", str(img), "-o", str(out), "--types", "noisy", "--set", "noisy.sgma=5"]) == 1
    assert main(["degrade", str(tmp_path / "missing.png"), "-o", str(out)]) == 1
    # an input that would be overwritten is refused, even with --overwrite
    src = photo(tmp_path / "noisy.png")
    before = src.read_bytes()
    assert main(["degrade", str(src), "-o", str(tmp_path), "--types", "noisy", "--overwrite"]) == 1
    assert "input" in capsys.readouterr().err
    assert src.read_bytes() == before
    # -o naming a file (an easy slip from `restore -o FILE`) is one line, and the file is kept
    assert main(["degrade", str(img), "-o", str(src), "--types", "noisy"]) == 1
    assert "is a file" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_cli_modules_and_plugins_do_not_import_torch():
    code = ("import sys, daclip_kit.cli.degrade, daclip_kit.cli.data, daclip_kit.degradations.plugin, "
            "daclip_kit.data.plugin; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_random_compositions_are_distinct_per_input(tmp_path, capsys):
    # 30 draws from the ~150 label sets of 2-3 types repeat one with probability > 0.9
    img = photo(tmp_path / "in.png", size=(16, 16))
    out = tmp_path / "out"
    assert main(["degrade", str(img), "-o", str(out), "--compose", "--num-composed", "30", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    labels = [tuple(r["degradations"]) for r in rec]
    assert len(rec) == 30 and len(set(labels)) == 30
    assert len(list(out.iterdir())) == 30


def test_impossible_number_of_distinct_compositions_is_an_error_before_writing(tmp_path, capsys):
    img = photo(tmp_path / "in.png", size=(16, 16))
    out = tmp_path / "out"
    assert main(["degrade", str(img), "-o", str(out), "--compose", "--num-composed", "1000"]) == 1
    assert "--num-composed" in capsys.readouterr().err
    assert not out.exists()


def test_existing_composed_target_is_refused_before_writing(tmp_path, capsys):
    img = photo(tmp_path / "in.png", size=(16, 16))
    out = tmp_path / "out"
    out.mkdir()
    (out / "hazy+noisy.png").write_bytes(b"keep")
    # types given in non-physical order: the check uses the written name hazy+noisy
    assert main(["degrade", str(img), "-o", str(out), "--types", "noisy,hazy", "--compose"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "hazy+noisy.png").read_bytes() == b"keep"
