"""``python -m daclip_kit ...``: the ``daclip-kit`` command (also under ``torchrun``)."""

from __future__ import annotations

import atexit
import logging
import os
import sys

from .cli.main import main


def _exit_process(code: int) -> None:
    """End a ``torchrun`` process once its work and its exit handlers are done, without the C++
    teardown of the interpreter's last moments: there gloo's threads can be destroyed while still
    running, which aborts the process ("terminate called without an active exception", exit -6)
    after it succeeded. Alone, the process exits as usual."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        sys.exit(code)
    atexit._run_exitfuncs()  # the failure watch's ordered exit (core/distributed.py) runs here
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_process(main())
