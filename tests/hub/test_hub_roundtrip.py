"""Push to and pull from a Hub served in this process (``fake_hub.FakeHub``) with the installed
``huggingface_hub`` on the client side: the real upload (create repo, preupload, LFS batch + PUT
+ verify, ndjson commit) and download (HEAD + GET of ``resolve``, ETag / X-Repo-Commit, Range)
code paths run, over HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from daclip_kit.cli.main import main
from daclip_kit.errors import CheckpointError, WeightsNotFoundError
from daclip_kit.weights import resolve_weights

REPO = "me/tiny-nafnet"
TINY = {"width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 2-step NAFNet training run (one-shot, EMA, validation at step 2) on a mini noisy set."""
    from daclip_kit.config import from_dict
    from daclip_kit.data.mini import build_mini
    from daclip_kit.train.config import RestorationTrainConfig
    from daclip_kit.train.restoration import train_restoration

    base = tmp_path_factory.mktemp("hub-run")
    root = base / "mini"
    build_mini(root, size=32, per_type=2, val_per_type=1, composed=0, types=("noisy",), seed=0)
    cfg = from_dict(RestorationTrainConfig, {
        "max_steps": 2, "log_every": 1, "save_every": 2, "out_dir": str(base / "run"), "device": "cpu",
        "precision": "fp32", "loss": "psnr",
        "data": {"root": str(root), "degradations": ["noisy"], "batch_size": 2, "patch_size": 32, "num_workers": 0},
        "network": {"name": "nafnet", **TINY}, "embedder": {"name": "none"},
        "validation": {"every": 2, "count": 1}, "optim": {"lr": 1e-3},
    })
    train_restoration(cfg)
    return base / "run"


def _checkpoint(run: Path) -> Path:
    return sorted((run / "checkpoints").iterdir())[-1]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_push_a_run_then_restore_from_hf_is_bit_exact(hub, trained, tmp_path, capsys):
    assert main(["push", str(trained), REPO]) == 0
    printed = capsys.readouterr().out
    assert "load with: hf://me/tiny-nafnet\n" in printed and "load with: hf://me/tiny-nafnet/network-ema" in printed

    files = hub.repos[REPO].commits[hub.repos[REPO].branches["main"]]
    assert sorted(files) == ["README.md", "model_index.json", "network-ema/config.json",
                             "network-ema/model.safetensors", "network/config.json",
                             "network/model.safetensors"]  # no trainer_state.pt
    index = json.loads(files["model_index.json"].data)
    assert (index["restorer"], index["daclip"]) == ("network-ema", None)  # trained without an embedder
    ckpt = _checkpoint(trained)
    for sub in ("network", "network-ema"):
        assert files[f"{sub}/model.safetensors"].data == (ckpt / sub / "model.safetensors").read_bytes()
        assert files[f"{sub}/model.safetensors"].lfs and not files[f"{sub}/config.json"].lfs
    # the safetensors went through the LFS batch API and a PUT, each checked by its sha256
    assert {r.path.rsplit("/", 1)[1] for r in hub.requests_for("PUT", "")} == {
        _sha(ckpt / sub / "model.safetensors") for sub in ("network", "network-ema")}
    assert hub.requests_for("POST", ".git/info/lfs/objects/batch")

    card = files["README.md"].data.decode()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "daclip-kit" and meta["pipeline_tag"] == "image-to-image"
    assert meta["license"] == "mit" and "nafnet" in meta["tags"]
    history = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    val_psnr = next(r["val_psnr"] for r in history if "val_psnr" in r)
    assert "steps trained: 2 of 2 planned" in card and f"| psnr | {val_psnr:.6g} |" in card
    assert "@inproceedings{chen2022simple" in card and "@inproceedings{luo2024controlling" in card
    assert '"width": 8' in card

    from daclip_kit.data.mini import build_mini

    images = tmp_path / "mini"
    build_mini(images, size=32, per_type=1, val_per_type=0, composed=0, types=("noisy",), seed=1)
    lq = next(images.rglob("LQ"))
    outs = {}
    for label, weights in (("hub", "hf://me/tiny-nafnet/network-ema"), ("local", str(ckpt / "network-ema")),
                           ("whole", "hf://me/tiny-nafnet")):
        outs[label] = tmp_path / label
        assert main(["restore", str(lq), "-o", str(outs[label]), "--model", "nafnet", "--weights", weights,
                     "--device", "cpu"]) == 0
    restored = sorted(p.name for p in outs["local"].iterdir())
    assert restored and restored == sorted(p.name for p in outs["hub"].iterdir())
    for name in restored:
        assert (outs["hub"] / name).read_bytes() == (outs["local"] / name).read_bytes()
        assert (outs["whole"] / name).read_bytes() == (outs["local"] / name).read_bytes()

    # pretrained= of the Python API takes the reference too, and gives the same weights
    from daclip_kit import create_backbone, load_network

    hub_net = create_backbone("nafnet", pretrained="hf://me/tiny-nafnet/network")
    local_net = load_network("nafnet", ckpt / "network")
    hub_state, local_state = hub_net.state_dict(), local_net.state_dict()
    assert hub_state.keys() == local_state.keys()
    assert all(torch.equal(hub_state[k], local_state[k]) for k in hub_state)


def test_interrupted_download_resumes_with_a_range_request(hub, trained, monkeypatch):
    from huggingface_hub import constants

    folder = _checkpoint(trained) / "network"
    assert main(["push", str(folder), "me/resume"]) == 0
    # the server drops the connection after half the file; with 4 KiB reads (10 MiB by default,
    # more than this file) the client has kept the first chunks and asks for the rest
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    hub.cut_once.add("model.safetensors")
    got = resolve_weights("hf://me/resume")
    assert (got / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    gets = hub.requests_for("GET", "/resolve/" + hub.repos["me/resume"].branches["main"] + "/model.safetensors")
    assert len(gets) == 2, [g.headers for g in gets]
    assert "range" not in gets[0].headers
    kept = int(gets[1].headers["range"].removeprefix("bytes=").removesuffix("-"))
    half = (folder / "model.safetensors").stat().st_size // 2
    assert 0 < kept <= half and kept % 4096 == 0


def test_tampered_file_is_refused_and_not_kept(hub, trained, tmp_path):
    folder = _checkpoint(trained) / "network"
    assert main(["push", str(folder), "me/tampered"]) == 0
    data = (folder / "model.safetensors").read_bytes()
    hub.tamper["model.safetensors"] = data[:-1] + bytes([data[-1] ^ 0xFF])  # same size, other bytes
    with pytest.raises(WeightsNotFoundError, match="does not match its Hub hash"):
        resolve_weights("hf://me/tampered")
    blobs = list((tmp_path / "cache" / "hub").rglob("blobs/*"))
    assert _sha(folder / "model.safetensors") not in {p.name for p in blobs}
    assert not list((tmp_path / "cache" / "hub").rglob("snapshots/*/model.safetensors"))
    assert main(["restore", str(tmp_path), "-o", str(tmp_path / "o"), "--model", "nafnet",
                 "--weights", "hf://me/tampered"]) != 0  # the CLI refuses it as well
    del hub.tamper["model.safetensors"]
    assert (resolve_weights("hf://me/tampered") / "model.safetensors").read_bytes() == data


def test_offline_uses_the_cache_and_says_what_is_missing(hub, trained, monkeypatch):
    folder = _checkpoint(trained) / "network"
    assert main(["push", str(folder), "me/offline", "--revision", "v1"]) == 0
    online = resolve_weights("hf://me/offline@v1")
    assert (online / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    hub.stop()
    n_requests = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_weights("hf://me/offline@v1") == online
    from daclip_kit.bench.runs import resolve_model  # bench --weights LABEL=hf://...

    assert resolve_model("hf://me/offline@v1").network == online
    with pytest.raises(WeightsNotFoundError, match=r"not in the cache .* HF_HUB_OFFLINE is set"):
        resolve_weights("hf://me/offline")  # main holds no model: never downloaded
    assert len(hub.requests) == n_requests


def test_push_refuses_what_is_not_native_and_needs_a_token(hub, trained, tmp_path, monkeypatch, capsys):
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text((_checkpoint(trained) / "network" / "config.json").read_text())
    assert main(["push", str(half), "me/x"]) == 1
    err = capsys.readouterr().err.strip()
    assert "not a native model folder" in err and "model.safetensors" in err and len(err.splitlines()) == 1

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((half / "config.json").read_text())
    torch.save({"w": torch.zeros(2)}, pickled / "model.safetensors")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        from daclip_kit.hub import push_folder

        push_folder(pickled, "me/x")

    monkeypatch.delenv("HF_TOKEN")
    assert main(["push", str(_checkpoint(trained) / "network"), "me/x"]) == 1
    assert "No Hugging Face token" in capsys.readouterr().err
    assert not hub.requests  # nothing was sent for any of these


def test_private_push_and_a_single_file_reference(hub, trained, capsys):
    folder = _checkpoint(trained) / "network"
    assert main(["push", str(folder), "me/private", "--private"]) == 0
    assert hub.repos["me/private"].private
    got = resolve_weights("hf://me/private/model.safetensors")  # one file, not a folder
    assert got.is_file() and got.read_bytes() == (folder / "model.safetensors").read_bytes()
    with pytest.raises(WeightsNotFoundError, match="does not exist; a native folder holds"):
        resolve_weights("hf://me/private/no-such-folder")


@pytest.mark.parametrize("ref, part", [("hf://me", "names no repository"), ("hf://me/x/../y", "'..'"),
                                       ("hf://me/bad name", "not a valid Hub reference"),
                                       ("hf://me/x@", "not a valid Hub reference")])
def test_malformed_references_are_one_clear_error(ref, part):
    with pytest.raises(WeightsNotFoundError, match=re.escape(part)):
        resolve_weights(ref)


def test_references_survive_the_cli_options():
    from daclip_kit.cli.demo import settings_from_args
    from daclip_kit.cli.main import build_parser
    from daclip_kit.weights import parse_hub_ref

    args = build_parser(["demo"]).parse_args(["demo", "--weights", "hf://me/net@v2/network-ema",
                                              "--daclip-weights", "hf://me/daclip"])
    settings = settings_from_args(args)  # no "does not exist" for a Hub reference
    assert settings.weights == "hf://me/net@v2/network-ema" and settings.embedder_weights == "hf://me/daclip"
    hub_ref = parse_hub_ref(settings.weights)
    assert (hub_ref.repo_id, hub_ref.revision, hub_ref.path) == ("me/net", "v2", "network-ema")


def test_a_daclip_folder_goes_up_and_comes_back_as_an_embedder(hub, tmp_path):
    import copy

    from daclip_kit import create_embedder
    from daclip_kit.embedders.daclip.convert import save_daclip
    from daclip_kit.embedders.daclip.model import DaCLIP
    from daclip_kit.embedders.plugin import TINY_CLIP_CONFIG

    torch.manual_seed(0)
    save_daclip(DaCLIP.from_config(copy.deepcopy(TINY_CLIP_CONFIG)), tmp_path / "daclip")
    assert main(["push", str(tmp_path / "daclip"), "me/tiny-daclip"]) == 0
    files = hub.repos["me/tiny-daclip"].commits[hub.repos["me/tiny-daclip"].branches["main"]]
    card = files["README.md"].data.decode()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["pipeline_tag"] == "image-feature-extraction" and "da-clip" in meta["tags"]
    assert "--daclip-weights hf://me/tiny-daclip" in card

    images = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(1))
    from_hub = create_embedder("daclip", weights="hf://me/tiny-daclip", device="cpu").embed_image(images)
    local = create_embedder("daclip", weights=str(tmp_path / "daclip"), device="cpu").embed_image(images)
    assert torch.equal(from_hub.content, local.content) and torch.equal(from_hub.degradation, local.degradation)


def test_the_card_of_a_diffusion_network_records_its_sampler(tmp_path):
    from daclip_kit import create_backbone, save_network
    from daclip_kit.hub import model_card, plan_push

    unet = {"nf": 32, "ch_mult": [1, 1, 1, 1], "context_dim": 32}
    sampler = {"name": "irsde", "config": {"max_sigma": 50.0, "T": 100}}
    save_network(create_backbone("irsde-unet", **unet), tmp_path / "unet", name="irsde-unet", config=unet,
                 sampler=sampler)
    card = model_card(plan_push(tmp_path / "unet"), "me/unet")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert "diffusion" in meta["tags"] and meta["license"] == "mit"
    sampler_json = card.split("## Sampler")[1].split("```json\n")[1].split("```")[0]
    assert json.loads(sampler_json) == sampler
    assert "@inproceedings{luo2023image" in card and "## Training" not in card  # no run folder


def test_a_calibrated_daclip_keeps_its_unknown_degradation_check_through_the_hub(hub, tmp_path):
    """The kNN calibration's reference embeddings (ood.safetensors) go up with the folder and come
    back with it: the pulled model gives the same verdicts as the local one."""
    import copy

    from daclip_kit import create_embedder
    from daclip_kit.data.mini import build_mini
    from daclip_kit.embedders.daclip.convert import save_daclip
    from daclip_kit.embedders.daclip.model import DaCLIP
    from daclip_kit.embedders.plugin import TINY_CLIP_CONFIG
    from daclip_kit.train.calibrate import calibrate_embedder, write_calibrated

    build_mini(tmp_path / "mini", size=32, per_type=1, val_per_type=3, composed=0, types=("noisy", "hazy"), seed=0)
    torch.manual_seed(0)
    save_daclip(DaCLIP.from_config(copy.deepcopy(TINY_CLIP_CONFIG)), tmp_path / "raw")
    local = create_embedder("daclip", weights=str(tmp_path / "raw"), device="cpu")
    calibration = calibrate_embedder(local, tmp_path / "mini")
    write_calibrated(local.model, calibration, tmp_path / "daclip")
    assert (tmp_path / "daclip" / "ood.safetensors").is_file() and calibration.statistic == "knn"

    assert main(["push", str(tmp_path / "daclip"), "me/calibrated-daclip"]) == 0
    files = hub.repos["me/calibrated-daclip"].commits[hub.repos["me/calibrated-daclip"].branches["main"]]
    assert files["ood.safetensors"].data == (tmp_path / "daclip" / "ood.safetensors").read_bytes()

    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    mine = create_embedder("daclip", weights=str(tmp_path / "daclip"), device="cpu")
    pulled = create_embedder("daclip", weights="hf://me/calibrated-daclip", device="cpu")
    assert pulled.ood_calibration is not None and pulled.ood_calibration.statistic == "knn"
    assert pulled.degradation_report(images) == mine.degradation_report(images)
    assert all(row["unknown_degradation"] in (True, False) for row in pulled.degradation_report(images))
