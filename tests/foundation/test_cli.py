"""CLI behaviour and start-up cost (torch must not be imported for discovery commands)."""

import argparse
import json
import os
import re
import subprocess
import sys

import pytest

import daclip_kit.cli.main as cli_main
from daclip_kit.cli.main import main
from daclip_kit.plugins import get_registry
from daclip_kit.specs import KINDS, load_target

NO_TORCH = """
import sys
{body}
heavy = sorted(m for m in ("torch", "numpy", "open_clip", "PIL", "kornia") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def _run_py(body: str) -> str:
    out = subprocess.run([sys.executable, "-c", NO_TORCH.format(body=body)], capture_output=True,
                         text=True, check=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    return out.stdout


def test_import_does_not_import_torch():
    assert "HEAVY=\n" in _run_py("import daclip_kit; daclip_kit.__version__")


@pytest.mark.parametrize("argv", [["--help"], ["ls", "backbones"], ["ls", "adapters", "--json"], ["plugins"]])
def test_discovery_commands_do_not_import_torch(argv):
    body = f"from daclip_kit.cli.main import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert "HEAVY=\n" in _run_py(body)


def test_console_script_help():
    exe = subprocess.run([sys.executable, "-m", "daclip_kit.cli.main", "--help"], capture_output=True, text=True)
    assert exe.returncode == 0
    for verb in ("ls", "plugins"):
        assert verb in exe.stdout


def _verb_paths(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    """Every sub-verb under ``parser`` as ``"data add"``, walking nested subparsers."""
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += [f"{prefix} {name}", *_verb_paths(sub, f"{prefix} {name}")]
    return paths


def test_root_help_lists_every_verb_and_sub_verb():
    paths = []
    for entry in get_registry("commands").entries():
        parser = argparse.ArgumentParser(prog=entry.spec.name)
        load_target(entry.spec.target)(parser)
        paths += [entry.spec.name, *_verb_paths(parser, entry.spec.name)]
    assert {"data add", "data check", "weights fetch"} <= set(paths)
    out = subprocess.run([sys.executable, "-m", "daclip_kit.cli.main", "--help"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "200", "HF_HUB_OFFLINE": "1"}, check=True).stdout
    # a row of the COMMAND table: the indented path, then its summary two spaces on (or nothing)
    missing = [path for path in paths if not re.search(rf"^ +{re.escape(path)}(  |$)", out, flags=re.M)]
    assert not missing, f"not in `daclip-kit --help`: {missing}\n{out}"


def test_root_help_survives_a_verb_that_cannot_be_set_up(monkeypatch, capsys):
    real = cli_main.load_target

    def broken_data(target):
        if target.startswith("daclip_kit.cli.data:"):
            raise ImportError("cannot import name 'X'")
        return real(target)

    monkeypatch.setattr(cli_main, "load_target", broken_data)
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    captured = capsys.readouterr()
    assert "weights fetch" in captured.out and "data add" not in captured.out
    assert "the sub-verbs of 'data' are not listed" in captured.err and "cannot import name 'X'" in captured.err


def test_ls_json(capsys):
    assert main(["ls", "adapter", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"cross-attention", "prompt"}
    assert all(r["plugin"] == "daclip_kit.adapters" for r in rows if r["name"] in ("prompt", "cross-attention"))


def test_unknown_kind_is_a_clean_error(capsys):
    assert main(["ls", "backbonez"]) == 1
    err = capsys.readouterr().err
    assert "Did you mean: backbones" in err and "Traceback" not in err


def test_unknown_verb_is_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["restor"])
    assert info.value.code == 2


def test_no_verb_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_ls_without_kind_counts_every_kind(capsys):
    assert main(["ls", "--json"]) == 0
    counts = {r["kind"]: r["count"] for r in json.loads(capsys.readouterr().out)}
    assert set(counts) == set(KINDS)
    assert counts["backbones"] >= 10 and counts["samplers"] >= 3


@pytest.mark.parametrize("argv", [["ls"], ["ls", "backbones"], ["ls", "tables"], ["plugins"]])
def test_listings_fit_an_80_column_terminal(argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.strip() and max(len(line) for line in out.splitlines()) <= 80
