"""Stage 1: contrastive training of DA-CLIP's controller (paper §3.1; FACTS §1.7).

CLIP is frozen (:meth:`DaCLIP.lock_clip`); the controller tower and DA-CLIP's own
``logit_scale`` are trained on ``contrastive_loss`` (content embedding vs caption) plus
``degra_loss`` (degradation embedding vs degradation word). The CSV title
``"<caption>: <degradation>"`` is split into the two texts, each tokenised to the context length
and concatenated, as ``DaCLIP.forward`` expects. ``logit_scale`` is clamped to ``[0, ln 100]``
after every step.

Example:
    >>> from daclip_kit.train import DaClipTrainConfig, train_daclip  # doctest: +SKIP
    >>> result = train_daclip(DaClipTrainConfig(out_dir="runs/daclip"))  # doctest: +SKIP
    >>> result.checkpoint / "daclip"  # a native folder: create_embedder("daclip", weights=...)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_strict, read_state_dict
from ..embedders.daclip.architectures import clip_kwargs
from ..embedders.daclip.architectures import model_config as bundled_config
from ..embedders.daclip.convert import load_daclip, load_official_daclip, save_daclip
from ..embedders.daclip.loss import DaClipLoss
from ..embedders.daclip.model import DaCLIP
from ..embedders.tokenizer import tokenize
from ..errors import WeightsNotFoundError
from .config import DaClipModelConfig, DaClipTrainConfig
from .datasets import CaptionImageDataset
from .loop import Progress, TrainResult, TrainTask, run

log = logging.getLogger(__name__)

#: The largest logit scale: ``exp(logit_scale)`` is clamped to at most 100.
MAX_LOGIT_SCALE = math.log(100)
MODEL_DIR = "daclip"


def _base_arch(name: str) -> str:
    """open_clip architecture of a bundled DA-CLIP config (``daclip_ViT-B-32`` -> ``ViT-B-32``)."""
    return name.removeprefix("daclip_")


def build_daclip(cfg: DaClipModelConfig) -> DaCLIP:
    """The DA-CLIP network to start training from (see :class:`DaClipModelConfig`).

    The controller is a copy of the CLIP vision tower taken after CLIP's weights are loaded, as in
    the official ``DaCLIP.__init__``.

    Raises:
        WeightsNotFoundError: a file that does not exist, or an open_clip tag that cannot be fetched.
        CheckpointError: weights that do not fit the config.
    """
    config = cfg.model_config or bundled_config(cfg.name)
    source = cfg.pretrained
    if source is None:
        return DaCLIP.from_config(config)
    path = Path(source)
    if path.is_dir():
        return load_daclip(path)
    if path.is_file():
        sd = read_state_dict(path)
        if any(k.startswith("visual_control.") for k in sd):
            return load_official_daclip(sd, config=config)
        clip = _clip(config)
        load_strict(clip, sd, source=str(path))
        return DaCLIP(clip, config=config)
    if path.suffix in (".pt", ".pth", ".bin", ".safetensors") or len(path.parts) > 1:
        raise WeightsNotFoundError(f"model.pretrained={source!r} does not exist.")
    return _from_open_clip_tag(config, _base_arch(cfg.name), source)


def _clip(config: dict[str, Any]) -> torch.nn.Module:
    import open_clip

    return open_clip.CLIP(**clip_kwargs(config))


def _from_open_clip_tag(config: dict[str, Any], arch: str, tag: str) -> DaCLIP:
    import open_clip

    try:
        pretrained = open_clip.create_model(arch, pretrained=tag)
    except RuntimeError as exc:
        raise WeightsNotFoundError(
            f"open_clip could not get the {tag!r} weights of {arch}: {exc} Run once while online, or "
            "download the CLIP state dict and set model.pretrained to its path."
        ) from exc
    clip = _clip(config)
    load_strict(clip, pretrained.state_dict(), source=f"open_clip {arch} {tag}")
    return DaCLIP(clip, config=config)


class DaClipTask(TrainTask):
    """The DA-CLIP side of :func:`~daclip_kit.train.loop.run`."""

    def __init__(self, cfg: DaClipTrainConfig, device: torch.device, checkpoint: Path | None):
        self.cfg = cfg
        self.device = device
        model = load_daclip(checkpoint / MODEL_DIR) if checkpoint is not None else build_daclip(cfg.model)
        self.model = model.lock_clip().to(device).train()
        self.model.clip.eval()
        self.criterion = DaClipLoss()
        self.dataset = CaptionImageDataset(cfg.data.csv_path(), self.model.image_size, seed=cfg.seed,
                                           crop=cfg.data.crop)
        self.batch_size = cfg.data.batch_size
        self.num_workers = cfg.data.num_workers
        trainable = sum(p.numel() for _, p in self.trainable())
        log.info("DA-CLIP: %d trainable parameters (controller + logit_scale); %d training rows",
                 trainable, len(self.dataset))

    def trainable(self):
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def tokens(self, captions: list[str], degradations: list[str]) -> torch.Tensor:
        """``(B, 2 * context_length)`` ids: the caption's, then the degradation word's."""
        ctx = self.model.context_length
        return torch.cat([tokenize(captions, ctx), tokenize(degradations, ctx)], dim=1)

    def loss(self, batch: dict, generator: torch.Generator):
        pixels = batch["pixels"].to(self.device, non_blocking=True)
        tokens = self.tokens(list(batch["caption"]), list(batch["degradation"])).to(self.device)
        out = self.model(pixels, tokens)
        contrastive, degra = self.criterion(**out)
        return contrastive + degra, {"contrastive_loss": float(contrastive.detach()),
                                     "degra_loss": float(degra.detach()),
                                     "logit_scale": float(out["logit_scale"].detach())}

    def after_step(self, step: int) -> None:
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)

    def model_writers(self):
        return {MODEL_DIR: lambda path: save_daclip(self.model, path)}


def train_daclip(cfg: DaClipTrainConfig, *, resume: str | Path | None = None, overwrite: bool = False,
                 progress: Progress | None = None) -> TrainResult:
    """Train DA-CLIP's controller as ``cfg`` says.

    Checkpoints are ``cfg.out_dir/checkpoints/step-N/daclip`` (a native DA-CLIP folder, loadable
    with ``create_embedder("daclip", weights=...)``) plus ``trainer_state.pt`` for ``resume``.

    Args:
        cfg: the run config.
        resume: a run folder or checkpoint folder to continue from.
        overwrite: allow a non-empty ``cfg.out_dir``.
        progress: ``progress(step, total, record)`` after every step.

    Returns:
        :class:`~daclip_kit.train.loop.TrainResult`.
    """
    return run(DaClipTask, cfg, resume=resume, overwrite=overwrite, progress=progress)
