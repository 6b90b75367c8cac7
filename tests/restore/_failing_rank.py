"""``daclip-kit`` as torchrun starts it, except that on process 1 every image write fails with
OSError (a full disk), after writing the time of the failure to ``$FAILED_AT``."""

import errno
import os
import sys
import time
from pathlib import Path

import daclip_kit.pipelines.files as files
from daclip_kit.cli.main import main

if os.environ.get("RANK") == "1":
    def full_disk(path, *args, **kwargs):
        Path(os.environ["FAILED_AT"]).write_text(str(time.time()))
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    files.write_image = full_disk

sys.exit(main())
