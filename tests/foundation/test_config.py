from dataclasses import dataclass, field
from typing import Literal

import pytest

from daclip_kit.config import apply_overrides, from_dict, load_toml, to_dict
from daclip_kit.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Net:
    width: int = 64
    ch_mult: tuple[int, ...] = (1, 2, 4, 8)
    use_content: bool = True
    schedule: Literal["cosine", "linear"] = "cosine"
    eps: float = 0.005


@dataclass(frozen=True, kw_only=True)
class Run:
    name: str = "run"
    steps: int | None = None
    net: Net = field(default_factory=Net)


def test_from_dict_nested_and_coercion():
    run = from_dict(Run, {"name": "x", "net": {"width": 32, "ch_mult": [1, 1], "eps": 1}})
    assert run.net == Net(width=32, ch_mult=(1, 1), eps=1.0)
    assert to_dict(run)["net"]["ch_mult"] == [1, 1]


def test_unknown_key_suggests():
    with pytest.raises(ConfigError, match=r"Unknown config key 'net.widht'.*Did you mean: width"):
        from_dict(Run, {"net": {"widht": 3}})


@pytest.mark.parametrize(
    "override, check",
    [
        ("net.width=16", lambda r: r.net.width == 16),
        ("net.use_content=false", lambda r: r.net.use_content is False),
        ("net.ch_mult=1,2", lambda r: r.net.ch_mult == (1, 2)),
        ("net.schedule=linear", lambda r: r.net.schedule == "linear"),
        ("steps=none", lambda r: r.steps is None),
        ("steps=10", lambda r: r.steps == 10),
        ("net.eps=1e-3", lambda r: r.net.eps == 1e-3),
    ],
)
def test_overrides_coerced_by_type(override, check):
    assert check(apply_overrides(Run(), [override]))


@pytest.mark.parametrize(
    "override, message",
    [
        ("net.width=wide", "expected an integer"),
        ("net.use_content=maybe", "expected true/false"),
        ("net.schedule=cosin", "Did you mean: cosine"),
        ("net.depth=3", "Unknown config key 'net.depth'"),
        ("name.x=3", "not a section"),
        ("width", "must look like"),
        ("net.width=__import__('os')", "expected an integer"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        apply_overrides(Run(), [override])


def test_load_toml(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('name = "t"\n[net]\nwidth = 48\n')
    run = load_toml(Run, path, ["net.eps=0.01"])
    assert run.name == "t" and run.net.width == 48 and run.net.eps == 0.01
    path.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(Run, path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(Run, tmp_path / "missing.toml")
