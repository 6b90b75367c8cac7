"""The first restore without weights and without a network: decided in seconds, one error naming
every missing file of the pipeline and the three ways to provide them; hub warnings said once."""

import logging
import socket
import time

import pytest
from PIL import Image

from daclip_kit.cli.main import _setup_logging, main
from daclip_kit.errors import WeightsNotFoundError
from daclip_kit.weights import fetch

pytestmark = pytest.mark.usefixtures("one_thread")

WAYS = ("--weights-dir DIR", "in the cache", "daclip-kit weights fetch", "--weights universal-ir.pth")


@pytest.fixture
def no_hub(tmp_path, monkeypatch):
    """An empty cache, a fresh probe cache, and a hub download that must never be attempted."""
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(fetch, "_PROBED", {})

    def never(*args, **kwargs):
        raise AssertionError("the hub was contacted although it cannot be reached")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", never)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (16, 16), (90, 120, 30)).save(photo)
    return photo


def _restore(photo, out, *extra):
    start = time.perf_counter()
    code = main(["restore", str(photo), "-o", str(out), "--device", "cpu", *extra])
    return code, time.perf_counter() - start


def _one_error_naming(err, *files):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for name in files:
        assert lines[0].count(name) >= 1, name
    return lines[0]


def test_hf_hub_offline_names_both_files_at_once(no_hub, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, seconds = _restore(no_hub, tmp_path / "out.png")
    assert code == 1 and seconds < 5
    line = _one_error_naming(capsys.readouterr().err, "universal-ir.pth", "daclip_ViT-B-32.pt", *WAYS)
    assert "HF_HUB_OFFLINE is set" in line and "--daclip-weights daclip_ViT-B-32.pt" in line
    assert not (tmp_path / "out.png").exists()


def test_an_unreachable_endpoint_is_found_out_by_one_quick_probe(no_hub, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    code, seconds = _restore(no_hub, tmp_path / "out.png")
    assert code == 1 and seconds < 5
    line = _one_error_naming(capsys.readouterr().err, "universal-ir.pth", "daclip_ViT-B-32.pt", *WAYS)
    assert "127.0.0.1:9 cannot be reached" in line
    assert list(fetch._PROBED) == [("127.0.0.1", 9)]  # probed once for both files


def test_with_the_network_given_only_the_embedder_is_named(no_hub, tmp_path, monkeypatch, capsys, tiny_models):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, seconds = _restore(no_hub, tmp_path / "out.png", "--weights", str(tiny_models["weights"]))
    assert code == 1 and seconds < 5
    line = _one_error_naming(capsys.readouterr().err, "daclip_ViT-B-32.pt", "--daclip-weights daclip_ViT-B-32.pt")
    assert "universal-ir.pth" not in line and "this file is missing" in line


def test_a_probe_without_answer_gives_up_after_its_timeout(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    monkeypatch.setattr(fetch, "_PROBED", {})

    def black_hole(*args, **kwargs):  # answers nothing for a long time, then times out as a socket does
        time.sleep(30)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", black_hole)
    spec = fetch.get_weight_spec("universal-ir")
    start = time.perf_counter()
    reason = fetch.hub_unreachable([spec], timeout=0.3)
    assert time.perf_counter() - start < 2
    assert reason == "hub.invalid:443 cannot be reached (no answer within 0.3 s)"


def test_missing_files_are_downloaded_together_when_the_hub_answers(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(fetch, "hub_unreachable", lambda specs, **kw: "")
    got = []

    def fake_download(spec, cache):
        got.append(spec.name)
        return cache / spec.filename

    monkeypatch.setattr(fetch, "download_weights", fake_download)
    here = tmp_path / "net.pth"
    here.write_bytes(b"x")
    found = [(here, "--weights"), (fetch.get_weight_spec("daclip-vit-b-32"), "--daclip-weights")]
    paths = fetch.provide_weights(found, cache_dir=tmp_path / "cache")
    assert paths == [here, tmp_path / "cache" / "daclip_ViT-B-32.pt"] and got == ["daclip-vit-b-32"]
    with pytest.raises(WeightsNotFoundError, match=r"downloads are off \(download=False\).*daclip_ViT-B-32.pt"):
        fetch.provide_weights(found, download=False, cache_dir=tmp_path / "cache")


def test_hub_log_records_are_printed_once(capfd):
    import huggingface_hub.utils.logging  # noqa: F401  (gives the hub logger its own handler)

    _setup_logging(0, True)
    try:
        fetch._one_handler_for_hub_records()
        logging.getLogger("huggingface_hub.file_download").warning("Retrying in 1s [Retry 1/5].")
        err = capfd.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
    assert err.count("Retrying in 1s") == 1, err
