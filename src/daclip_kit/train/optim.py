"""AdamW over the trainable parameters and the warmup + cosine learning-rate rule."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from ..errors import ConfigError
from .config import OptimConfig

#: Name fragments of parameters that get no weight decay (with every parameter of ndim < 2).
NO_DECAY_NAMES: tuple[str, ...] = ("bn", "ln", "bias", "logit_scale")


def no_decay(name: str, param: torch.Tensor) -> bool:
    """Gains, biases and ``logit_scale`` are not decayed (open_clip's ``exclude`` rule)."""
    return param.ndim < 2 or any(part in name for part in NO_DECAY_NAMES)


def param_groups(named: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """Split trainable ``(name, parameter)`` pairs into a decayed and an undecayed group."""
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for name, p in named:
        if p.requires_grad:
            (plain if no_decay(name, p) else decay).append(p)
    groups = [{"params": plain, "weight_decay": 0.0}]
    if decay:
        groups.insert(0, {"params": decay, "weight_decay": weight_decay})
    return groups


def build_optimizer(named: Iterable[tuple[str, nn.Parameter]], cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of ``named`` with ``cfg``'s settings."""
    groups = param_groups(named, cfg.weight_decay)
    if not any(g["params"] for g in groups):
        raise ConfigError("Nothing to train: every parameter is frozen.")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), eps=cfg.eps)


def lr_at(step: int, total: int, cfg: OptimConfig) -> float:
    """Learning rate of 0-based ``step`` out of ``total`` (see :class:`OptimConfig`)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(total - cfg.warmup_steps, 1)
    progress = min(step - cfg.warmup_steps, span) / span
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
