"""One version source: pyproject.toml's ``version``, read back from the installed distribution."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import daclip_kit
from daclip_kit import _version
from daclip_kit.cli.main import main
from daclip_kit.config import tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_the_distributions():
    assert daclip_kit.__version__ == importlib.metadata.version("daclip-kit")


def test_installed_metadata_matches_pyproject():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert daclip_kit.__version__ == declared, "stale metadata: reinstall with scripts/setup.sh or pip install -e ."


def test_cli_version_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"daclip-kit {importlib.metadata.version('daclip-kit')}"


def test_missing_metadata_gives_the_fallback(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert _version.distribution_version() == "0+unknown"


def test_import_without_metadata_raises_nothing():
    # a source tree that was never installed: the import succeeds and says its version is unknown
    code = ("import importlib.metadata as m\n"
            "def not_installed(name):\n    raise m.PackageNotFoundError(name)\n"
            "m.version = not_installed\n"
            "import daclip_kit\nprint(daclip_kit.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0+unknown"
