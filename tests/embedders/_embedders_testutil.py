"""Helpers shared by the tests in this folder (tiny DA-CLIP models and official-format files)."""

from __future__ import annotations

import copy

import torch

#: A 2-layer, width-64 ViT on 32 px; full BPE vocabulary so the real tokenizer works.
TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def tiny_config() -> dict:
    return copy.deepcopy(TINY)


def perturbed_daclip(seed: int = 0):
    """A tiny DaCLIP whose parameters (zero linears included) are all non-trivial."""
    from daclip_kit.embedders.daclip.model import DaCLIP

    torch.manual_seed(seed)
    model = DaCLIP.from_config(tiny_config())
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    return model.eval()


def official_checkpoint(state_dict: dict, *, ddp: bool = True) -> dict:
    """Wrap a state dict as an open_clip training checkpoint with optimizer state."""
    sd = {("module." + k if ddp else k): v for k, v in state_dict.items()}
    first = next(iter(state_dict.values()))
    return {
        "epoch": 30,
        "name": "daclip_ViT-B-32-test",
        "state_dict": sd,
        "optimizer": {"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.zeros_like(first)}},
                      "param_groups": [{"lr": 2e-5, "betas": (0.9, 0.98), "params": [0]}]},
        "scaler": {"scale": 65536.0, "growth_factor": 2.0},
    }
