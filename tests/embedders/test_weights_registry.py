"""Named weights: the official table, the cache, the resolve hook and the offline message."""

from __future__ import annotations

import os

import pytest

from daclip_kit.errors import UnknownComponentError, WeightsNotFoundError
from daclip_kit.weights import default_cache_dir, get_weight_spec, resolve_weights

OFFICIAL = {
    "daclip-vit-b-32": ("daclip_ViT-B-32.pt", 1_744_725_787, "embedder:daclip"),
    "universal-ir": ("universal-ir.pth", 195_990_371, "backbone:irsde-unet"),
    "daclip-vit-b-32-mix": ("daclip_ViT-B-32_mix.pt", 0, "embedder:daclip"),
    "universal-ir-mix": ("universal-ir-mix.pth", 0, "backbone:irsde-unet"),
    "wild-daclip-vit-l-14": ("wild-daclip_ViT-L-14.pt", 5_661_040_338, "embedder:daclip"),
    "wild-ir-unet": ("wild-ir.pth", 197_969_027, "backbone:irsde-unet-wild"),
}


def test_official_table():
    from daclip_kit.factory import list_components

    assert set(OFFICIAL) <= set(list_components("weights"))
    for name, (filename, size, model) in OFFICIAL.items():
        spec = get_weight_spec(name)
        assert (spec.filename, spec.size, spec.model) == (filename, size, model)
        assert spec.hf_repo == "weblzw/daclip-uir-ViT-B-32-irsde"
    assert get_weight_spec("wild-daclip-vit-l-14").config["model"] == "daclip_ViT-L-14"
    from daclip_kit.plugins import get_registry

    # the architecture preset lives on the backbone spec, not on the weights entry
    assert get_registry("backbones").get("irsde-unet-wild").defaults["context_dim"] == 768


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("DACLIP_KIT_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "daclip-kit")


def test_a_path_bypasses_the_registry(tmp_path):
    f = tmp_path / "anything.pt"
    f.write_bytes(b"x")
    assert resolve_weights(f) == f
    assert resolve_weights(str(f)) == f
    (tmp_path / "folder").mkdir()
    assert resolve_weights(tmp_path / "folder") == tmp_path / "folder"
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        resolve_weights(tmp_path / "missing.pt")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        resolve_weights("missing.pt")


def test_search_dirs_come_first_then_the_cache_then_torch_hub(tmp_path, monkeypatch):
    """One resolver serves --weights-dir, the cache and torch's hub cache (metric networks)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "alexnet-owt-7be5be79.pth").write_bytes(b"hub")
    cache, mine = tmp_path / "cache", tmp_path / "mine"
    assert resolve_weights("lpips-alexnet", cache_dir=cache) == hub / "alexnet-owt-7be5be79.pth"
    cache.mkdir()
    (cache / "alexnet-owt-7be5be79.pth").write_bytes(b"cache")
    assert resolve_weights("lpips-alexnet", cache_dir=cache) == cache / "alexnet-owt-7be5be79.pth"
    mine.mkdir()
    (mine / "alexnet-owt-7be5be79.pth").write_bytes(b"mine")
    assert resolve_weights("lpips-alexnet", cache_dir=cache, search_dirs=[mine]) == mine / "alexnet-owt-7be5be79.pth"


def test_cached_file_is_found_and_size_checked(tmp_path):
    cached = tmp_path / "daclip_ViT-B-32_mix.pt"  # size unknown: any size accepted
    cached.write_bytes(b"abc")
    assert resolve_weights("daclip-vit-b-32-mix", cache_dir=tmp_path) == cached
    (tmp_path / "wild-ir.pth").write_bytes(b"truncated")
    with pytest.raises(WeightsNotFoundError, match="incomplete"):
        resolve_weights("wild-ir-unet", cache_dir=tmp_path)


def test_missing_offline_says_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for download in (False, True):
        with pytest.raises(WeightsNotFoundError) as info:
            resolve_weights("universal-ir", cache_dir=tmp_path, download=download)
        msg = str(info.value)
        assert str(tmp_path / "universal-ir.pth") in msg and "weights fetch universal-ir" in msg
        assert "huggingface.co/weblzw/daclip-uir-ViT-B-32-irsde/resolve/main/universal-ir.pth" in msg
    assert not any(tmp_path.iterdir())


def test_unknown_name_suggests():
    with pytest.raises(UnknownComponentError, match="Did you mean: universal-ir"):
        resolve_weights("universal-irr")


def test_plugin_mirror_wins_over_the_cache(tmp_path):
    from daclip_kit import hookimpl
    from daclip_kit.plugins import get_plugin_manager

    mirror = tmp_path / "mirror" / "universal-ir.pth"
    mirror.parent.mkdir()
    mirror.write_bytes(b"m")

    class Mirror:
        @hookimpl
        def daclip_kit_resolve_weights(self, spec, cache_dir):  # fewer arguments than the spec: fine
            return mirror if spec.name == "universal-ir" else None

    get_plugin_manager().register(Mirror(), name="test-mirror")
    assert resolve_weights("universal-ir", cache_dir=tmp_path / "cache") == mirror
    with pytest.raises(WeightsNotFoundError):
        resolve_weights("wild-ir-unet", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("columns", ["80", "100"])
def test_weights_list_never_wraps_a_name_at_80_columns_piped(columns, tmp_path):
    import subprocess
    import sys

    from daclip_kit.plugins import get_registry

    env = {**os.environ, "COLUMNS": columns, "DACLIP_KIT_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "daclip_kit", "weights", "list"], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout  # piped: not a terminal
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= int(columns)
    first_words = {line.split()[0] for line in lines if line.strip()}
    for name in get_registry("weights").names():
        assert name in first_words, f"{name} is wrapped or cut:\n{out}"
