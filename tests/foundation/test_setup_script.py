"""The README's set-up block is the whole set-up, and ``.ci/run`` runs exactly it.

``scripts/setup.sh`` runs here against fake ``apt-get``/``sudo``/``id``/``python3`` on a ``PATH`` that
holds no Chromium (the real one stays installed), in a copy of the script inside a scratch repository,
so the "Chromium missing" branches run for real without touching this machine.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup.sh"
#: Real tools the script uses besides the faked ones.
TOOLS = ("bash", "env", "dirname", "mktemp", "rm", "tail", "cat", "mkdir", "chmod", "touch")


def setup_block() -> list[str]:
    """Commands of the first fenced block after ``## Set up`` (what the before-stop hook and .ci/run read)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Set up"):]
    block = re.search(r"```[a-z]*\n(.*?)```", section, flags=re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_readme_setup_block_is_setup_script_then_tests():
    commands = setup_block()
    assert len(commands) == 2
    assert commands[0].split()[0] == "scripts/setup.sh"
    assert "chromium" in commands[0].lower()  # the before-stop hook's check
    assert "-m pytest" in commands[1]


def test_ci_runs_the_readme_block_and_installs_nothing_itself():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "## Set up" in ci and "README.md" in ci
    code = [line for line in ci.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if "pip install" in line or "apt-get" in line]


def test_setup_script_parses():
    subprocess.run(["bash", "-n", str(SETUP)], check=True)
    assert os.access(SETUP, os.X_OK)


def _script(path: Path, body: str) -> None:
    path.write_text("#!" + shutil.which("bash") + "\n" + body)
    path.chmod(0o755)


@pytest.fixture
def sandbox(tmp_path):
    """A scratch repository with the real setup.sh, two plugins (one without pyproject) and fake tools."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(SETUP, repo / "scripts" / "setup.sh")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (repo / "plugins" / "alpha").mkdir(parents=True)
    (repo / "plugins" / "alpha" / "pyproject.toml").write_text("[project]\nname = 'alpha'\n")
    (repo / "plugins" / "notes").mkdir()
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in TOOLS:
        os.symlink(shutil.which(tool), bin_ / tool)
    log = tmp_path / "log"
    log.touch()
    # pip and python of the venv the fake python3 creates: they record what they were asked.
    _script(bin_ / "python3", f"""echo "python3 $*" >> {log}
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  printf '#!{shutil.which("bash")}\\necho "pip $*" >> {log}\\n' > "$3/bin/pip"
  printf '#!{shutil.which("bash")}\\necho "venv-python $*" >> {log}\\n' > "$3/bin/python"
  chmod +x "$3/bin/pip" "$3/bin/python"
fi
""")
    _script(bin_ / "sudo", f'echo "sudo $*" >> {log}\nexec "$@"\n')
    return repo, bin_, log


def run_setup(repo: Path, bin_: Path, *, uid: int, apt_has: tuple[str, ...] = ("chromium",), sudo: bool = True):
    log = bin_.parent / "log"
    _script(bin_ / "id", f'[ "$1" = -u ] && echo {uid}\n')
    wanted = " ".join(apt_has)
    _script(bin_ / "apt-get", f"""echo "apt-get $* (uid ${{FAKE_UID:-?}})" >> {log}
[ "$1" = update ] && exit 0
pkg="${{@: -1}}"
for ok in {wanted}; do
  if [ "$pkg" = "$ok" ]; then printf '#!/bin/sh\\n' > {bin_}/chromium; chmod +x {bin_}/chromium; exit 0; fi
done
echo "E: Package '$pkg' has no installation candidate" >&2; exit 100
""")
    if not sudo:
        (bin_ / "sudo").unlink()
    env = {"PATH": str(bin_), "HOME": str(bin_.parent)}
    result = subprocess.run([str(bin_ / "bash"), str(repo / "scripts" / "setup.sh")], env=env,
                            capture_output=True, text=True, timeout=60)
    return result, log.read_text().splitlines()


def test_missing_chromium_is_installed_with_sudo_then_venv_and_every_plugin(sandbox):
    repo, bin_, _ = sandbox
    result, log = run_setup(repo, bin_, uid=1000)
    assert result.returncode == 0, result.stderr
    assert "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq" in log
    assert "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium" in log
    assert log.index("python3 -m venv .venv") > max(i for i, line in enumerate(log) if line.startswith("apt-get"))
    assert "pip install -q -e .[dev] -e plugins/alpha/" in log
    assert (bin_ / "chromium").exists()


def test_as_root_apt_get_runs_without_sudo(sandbox):
    repo, bin_, _ = sandbox
    result, log = run_setup(repo, bin_, uid=0)
    assert result.returncode == 0, result.stderr
    assert not [line for line in log if line.startswith("sudo")]
    assert any(line.startswith("apt-get install -y -qq chromium") for line in log)


def test_ubuntu_package_name_is_the_fallback(sandbox):
    repo, bin_, _ = sandbox
    result, log = run_setup(repo, bin_, uid=0, apt_has=("chromium-browser",))
    assert result.returncode == 0, result.stderr
    installs = [line.split(" (")[0] for line in log if line.startswith("apt-get install")]
    assert installs == ["apt-get install -y -qq chromium", "apt-get install -y -qq chromium-browser"]


def test_no_root_and_no_sudo_fails_with_the_command_to_run(sandbox):
    repo, bin_, _ = sandbox
    result, log = run_setup(repo, bin_, uid=1000, sudo=False)
    assert result.returncode == 1
    assert "apt-get install -y chromium" in result.stderr and "DACLIP_KIT_CHROMIUM" in result.stderr
    assert not [line for line in log if line.startswith(("apt-get", "python3", "pip"))]


def test_apt_failure_is_reported_and_stops(sandbox):
    repo, bin_, _ = sandbox
    result, log = run_setup(repo, bin_, uid=0, apt_has=())
    assert result.returncode == 1
    assert "no installation candidate" in result.stderr and "apt-get install -y chromium failed" in result.stderr
    assert not [line for line in log if line.startswith("python3")]


def test_present_chromium_installs_nothing_and_existing_venv_is_reused(sandbox):
    repo, bin_, _ = sandbox
    _script(bin_ / "chromium", "")
    result, log = run_setup(repo, bin_, uid=1000)
    assert result.returncode == 0, result.stderr
    assert not [line for line in log if line.startswith(("apt-get", "sudo"))]
    result, log = run_setup(repo, bin_, uid=1000)
    assert result.returncode == 0, result.stderr
    assert sum(line == "python3 -m venv .venv" for line in log) == 1  # created once, reused after
    assert sum(line.startswith("pip install") for line in log) == 2
