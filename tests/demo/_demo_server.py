"""``daclip-kit demo`` in a child process, for the tests that use a real server (the browser test,
the temporary-files test)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import pytest

#: Seconds for the server to start (imports Gradio and torch, writes the examples).
START_TIMEOUT = 90


class DemoServer:
    """``daclip-kit demo`` in a child process; :attr:`url` once it listens, its output in :attr:`lines`."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "daclip_kit", "--no-color", "demo", *argv],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self.url: str | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            found = re.search(r"Open (http://\S+?)/? ", line)
            if found and self.url is None:
                self.url = found.group(1)

    def wait_until_listening(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while self.url is None:
            if self.proc.poll() is not None:
                pytest.fail(f"daclip-kit demo exited with {self.proc.returncode}:\n" + "\n".join(self.lines))
            if time.monotonic() > deadline:
                pytest.fail(f"daclip-kit demo did not start in {timeout} s:\n" + "\n".join(self.lines))
            time.sleep(0.1)
        return self.url

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` (SIGTERM; SIGINT is Ctrl+C) and wait for the exit code."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
