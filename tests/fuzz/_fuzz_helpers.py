"""Helpers of the fuzz cases: an in-process CLI runner, JSON and error checks and small crafted
models, all tiny so every case runs in well under a second or two (folder snapshots: tests/_snapshots.py)."""

from __future__ import annotations

import json
from pathlib import Path

from daclip_kit.cli.main import main


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``daclip-kit ARGV`` run in process."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's --help and usage errors exit, as the console script does
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_clean_failure(code: int, err: str, *needles: str) -> str:
    """Exit 1, one ``error:`` line on stderr (no traceback) holding every needle; returns it."""
    assert code == 1, err
    assert "Traceback" not in err, err
    errors = [line for line in lines(err) if line.startswith("error:")]
    assert len(errors) == 1, err
    assert len(lines(err)) == 1, f"stderr should be one line:\n{err}"
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    return errors[0]


def assert_no_traceback(err: str) -> None:
    assert "Traceback" not in err, err


def strict_json(text: str):
    """Parse JSON refusing NaN and Infinity (which Python's json accepts by default)."""

    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


#: A tiny DA-CLIP (full BPE vocabulary, so the real tokenizer works).
TINY_DACLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 1, "layers": 1},
}


def tiny_nafnet():
    """A NAFNet with the registry's tiny settings (a few thousand parameters)."""
    from daclip_kit.factory import create_backbone
    from daclip_kit.plugins import get_registry

    return create_backbone("nafnet", **dict(get_registry("backbones").get("nafnet").tiny_config))


def write_image_file(path: Path, size=(12, 16), seed: int = 0) -> Path:
    import torch

    from daclip_kit.io import write_image

    g = torch.Generator().manual_seed(seed)
    write_image(path, torch.rand(1, 3, *size, generator=g))
    return path
