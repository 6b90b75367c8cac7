"""Shared fixtures: a fresh plugin host per test, offline hub, reference fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The same floating-point results on every x86 CPU: MKL picks its kernels by instruction set, and on an
# AVX-512 machine they round differently from the AVX2 ones the parity fixtures were made with (the MR
# Sampler's karras/velocity case moved by 1.3e-4, ten times its tolerance). MKL's conditional numerical
# reproducibility mode fixes the kernels; it is read when MKL starts, so it is set before any test runs.
os.environ.setdefault("MKL_CBWR", "COMPATIBLE")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist's workers report to a fake 80-column terminal and export it as $COLUMNS/$LINES; the
    # commands the tests run must see the environment the user's own run would (no width forced on pipes)
    for _var in ("COLUMNS", "LINES"):
        os.environ.pop(_var, None)
    # one thread per worker: the workers share the cores (and so do the processes the tests start)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Test files that take minutes (module fixtures that train, a 4000x3000 restore, ONNX exports), longest
#: first. They are collected first so that under `-n auto --dist loadfile` (the README's test command) they
#: start at once on their workers instead of becoming the last worker's tail; the order is otherwise kept.
LONG_FILES = (
    "train/test_your_data_e2e.py",
    "restore/test_restore_files.py",
    "bench/test_bench_runs.py",
    "bench/test_bench_real_models.py",
    "export/test_onnx_restore_example.py",
    "hub/test_model_matrix.py",
    "export/test_export_graphs.py",
    "contract/test_contracts.py",
    "demo/test_demo_files.py",
    "demo/test_demo_model.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    tests = REPO_ROOT / "tests"

    def key(item) -> int:
        try:
            return rank.get(item.path.relative_to(tests).as_posix(), len(LONG_FILES))
        except ValueError:  # a test outside tests/ (a plugin's)
            return len(LONG_FILES)

    items.sort(key=key)  # stable: within a file and among the others, collection order is kept


@pytest.fixture(autouse=True)
def _fresh_plugin_host(monkeypatch):
    """Every test sees a newly built plugin host; env switches set by a test do not leak."""
    from daclip_kit import plugins

    for var in (plugins.ENV_DISABLE_AUTOLOAD, plugins.ENV_ALLOW, plugins.ENV_TRACE):
        monkeypatch.delenv(var, raising=False)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def fake_eps(monkeypatch):
    """The entry points the plugin host sees: append ``_plugin_fakes.FakeEntryPoint`` objects."""
    from daclip_kit import plugins

    eps: list = []

    def entry_points(group):
        assert group == "daclip_kit"
        return list(eps)

    monkeypatch.setattr(plugins.importlib_metadata, "entry_points", entry_points)
    return eps


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny random IR-SDE U-Net and DA-CLIP as native folders: ``{"weights": ..., "daclip": ...}``."""
    from daclip_kit.demo.tiny import write_tiny_models

    unet, daclip = write_tiny_models(tmp_path_factory.mktemp("tiny-models"))
    return {"weights": unet, "daclip": daclip}


#: Data made from the official code (tests/fixtures/reference/README.md): part of the repository.
REFERENCE_DIR = REPO_ROOT / "tests" / "fixtures" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The golden fixtures and key lists of the official code (``tests/fixtures/reference``)."""
    if not REFERENCE_DIR.is_dir():
        pytest.fail(f"reference fixtures missing at {REFERENCE_DIR}; they are part of the repository")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def golden(reference_dir):
    """Load a ``*.golden.pt`` fixture by file name (weights_only)."""
    import torch

    cache: dict[str, dict] = {}

    def load(name: str) -> dict:
        if name not in cache:
            cache[name] = torch.load(reference_dir / name, map_location="cpu", weights_only=True)
        return cache[name]

    return load


@pytest.fixture
def one_thread():
    """Run a test with one torch thread, restoring the setting afterwards.

    Tiny networks gain nothing from a second thread, and on a 2-core machine shared with other
    jobs two OpenMP threads can stall each other badly. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """A skipped test is not a passed one: the suite fails when anything was skipped."""
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} test(s) skipped; every test must run (see above)", red=True)


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = 1


@pytest.fixture
def torchrun():
    """Run ``python -m torch.distributed.run --standalone --nproc_per_node N -m daclip_kit ARGS`` (CPU,
    gloo, one thread per process) and return the finished process. On a timeout the whole process group
    is killed: the workers do not outlive the launcher."""
    import signal
    import subprocess
    import sys

    def run(*args: str, nproc: int = 2, timeout: float = 300, env: dict | None = None, script: Path | None = None):
        """``script``: a Python file torchrun runs instead of ``-m daclip_kit``."""
        program = [str(script)] if script is not None else ["-m", "daclip_kit"]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               *program, *map(str, args)]
        job_env = {k: v for k, v in os.environ.items()  # a fresh job, whatever launched the tests
                   if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
        job_env.update({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})})
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=job_env,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"torchrun did not finish in {timeout} s: {' '.join(cmd)}\n{err[-3000:]}")
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    return run
