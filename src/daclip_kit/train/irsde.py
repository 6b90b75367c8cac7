"""Stage 2: training the IR-SDE U-Net with a frozen DA-CLIP (paper §3.2; FACTS §2.5-2.7).

Per step: a batch of LQ/GT patches (balanced over degradations), DA-CLIP's content and
degradation embeddings of each LQ patch (no gradients; the embedder sees the patch, as the
official ``LQ_clip``), ``t ~ U{1..T}`` per sample, ``x_t`` drawn from the SDE's forward marginal
around the LQ image, and the sampler's training loss on the U-Net's noise prediction
(official maximum-likelihood L1 by default). An EMA of the weights is kept; checkpoints hold the
network (``unet``) and the EMA (``unet-ema``) as native folders.

Example:
    >>> from daclip_kit.train import IRSDETrainConfig, train_irsde  # doctest: +SKIP
    >>> result = train_irsde(IRSDETrainConfig(out_dir="runs/irsde"))  # doctest: +SKIP
    >>> # daclip-kit restore LQ.png -o out --weights runs/irsde/checkpoints/step-N/unet-ema
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..backbones.irsde_unet.arch import ConditionalUNet
from ..checkpoint import load_pretrained_files, load_strict, save_pretrained
from ..core.sampling import sample
from ..errors import CheckpointError, ConfigError
from ..io import read_image
from ..samplers.irsde.sampler import IRSDESampler
from ..types import Conditioning
from .config import IRSDETrainConfig
from .datasets import BalancedPatchDataset, round_robin
from .ema import EMA
from .loop import Progress, TrainResult, TrainTask, run

log = logging.getLogger(__name__)

NETWORK_DIR = "unet"
EMA_DIR = "unet-ema"


def build_embedder(cfg: IRSDETrainConfig, device: torch.device):
    """The frozen embedding provider of ``cfg.embedder`` (``None`` for ``name="none"``).

    Raises:
        ConfigError: its embedding size differs from ``network.context_dim``.
    """
    if cfg.embedder.name == "none":
        return None
    from ..factory import create_embedder

    e = cfg.embedder
    embedder = create_embedder(e.name, model=e.model, model_config=e.model_config, weights=e.weights,
                               device=str(device), quantize_input=e.quantize_input)
    embedder.eval().requires_grad_(False)
    net = cfg.network
    if (net.use_degra_context or net.use_image_context) and embedder.embed_dim != net.context_dim:
        raise ConfigError(f"network.context_dim={net.context_dim} but the {e.name} embedder gives "
                          f"{embedder.embed_dim}-d embeddings; set network.context_dim={embedder.embed_dim}.")
    return embedder


def load_network_folder(net: torch.nn.Module, folder: Path) -> None:
    """Load a native U-Net folder into ``net`` strictly, refusing a different architecture."""
    config, state = load_pretrained_files(folder)
    own = net.export_config()
    if {k: config.get(k) for k in own} != own:
        raise CheckpointError(f"{str(folder)!r} holds a network with config {config}, but the run config "
                              f"asks for {own}; resume with the run's own config.toml.")
    load_strict(net, state, source=str(folder))


class IRSDETask(TrainTask):
    """The IR-SDE side of :func:`~daclip_kit.train.loop.run`."""

    def __init__(self, cfg: IRSDETrainConfig, device: torch.device, checkpoint: Path | None):
        self.cfg = cfg
        self.device = device
        self.sampler = IRSDESampler(cfg.sde)
        self.embedder = build_embedder(cfg, device)
        net = ConditionalUNet(cfg.network)
        if checkpoint is not None:
            load_network_folder(net, checkpoint / NETWORK_DIR)
        self.net = net.to(device).train()
        self.ema = None
        if cfg.ema.enabled:
            self.ema = EMA(self.net, decay=cfg.ema.decay, update_every=cfg.ema.update_every)
            if checkpoint is not None:
                load_network_folder(self.ema.model, checkpoint / EMA_DIR)
        d = cfg.data
        self.dataset = BalancedPatchDataset(d.root, d.split, degradations=d.degradations, patch_size=d.patch_size,
                                            augment=d.augment, seed=cfg.seed)
        self.batch_size = d.batch_size
        self.num_workers = d.num_workers
        v = cfg.validation
        self.validate_every = v.every
        self.val_pairs = round_robin(d.root, v.split, d.degradations, v.count) if v.every else []
        log.info("IR-SDE: %d trainable parameters; %d training pairs in %d folders (%s)",
                 sum(p.numel() for p in self.net.parameters()), len(self.dataset), len(self.dataset.names),
                 ", ".join(self.dataset.names))

    def trainable(self):
        return list(self.net.named_parameters())

    @torch.no_grad()
    def condition(self, lq: torch.Tensor) -> Conditioning:
        """DA-CLIP embeddings of ``(B, 3, H, W)`` LQ images as float32 conditioning."""
        if self.embedder is None:
            return Conditioning()
        emb = self.embedder.embed_image(lq)
        return Conditioning.from_embedding(emb.to(dtype=torch.float32))

    def loss(self, batch: dict, generator: torch.Generator):
        lq = batch["lq"].to(self.device, non_blocking=True)
        gt = batch["gt"].to(self.device, non_blocking=True)
        cond = self.condition(lq)
        t = self.sampler.random_timesteps(lq.shape[0], generator, self.device)
        x_t, _ = self.sampler.forward_noise(gt, lq, t, generator=generator)
        noise = self.net(x_t, lq, t.reshape(-1), degradation=cond.degradation, content=cond.content)
        loss = self.sampler.training_loss(noise.float(), x_t, gt, lq, t, objective=self.cfg.objective,
                                          loss=self.cfg.loss)
        return loss, {}

    def after_step(self, step: int) -> None:
        if self.ema is not None:
            self.ema.update(self.net)

    def model_writers(self):
        writers = {NETWORK_DIR: lambda path: save_pretrained(self.net, path, self.net.export_config())}
        if self.ema is not None:
            writers[EMA_DIR] = lambda path: save_pretrained(self.ema.model, path, self.net.export_config())
        return writers

    def state(self):
        return {"ema": self.ema.state()} if self.ema is not None else {}

    def load_state(self, state):
        if self.ema is not None and "ema" in state:
            self.ema.load_state(state["ema"])

    @torch.no_grad()
    def validate(self, step: int) -> dict[str, float]:
        """Mean PSNR (official protocol) of a short sampler run on the validation pairs."""
        from ..metrics.peak_snr import psnr

        v = self.cfg.validation
        net = self.ema.model if (v.use_ema and self.ema is not None) else self.net
        was_training = net.training
        net.eval()
        generator = torch.Generator().manual_seed(self.cfg.seed)
        scores = []
        for pair in self.val_pairs:
            lq, gt = read_image(pair.lq).to(self.device), read_image(pair.gt)
            out = sample(net, self.sampler, lq, self.condition(lq), steps=v.steps, generator=generator)
            scores.append(float(psnr(out.clamp(0, 1).cpu(), gt)[0]))
        net.train(was_training)
        return {"psnr": sum(scores) / len(scores)} if scores else {}


def train_irsde(cfg: IRSDETrainConfig, *, resume: str | Path | None = None, overwrite: bool = False,
                progress: Progress | None = None) -> TrainResult:
    """Train the IR-SDE U-Net as ``cfg`` says.

    Checkpoints are ``cfg.out_dir/checkpoints/step-N/{unet,unet-ema}`` (native folders, loadable
    with ``daclip-kit restore --weights``) plus ``trainer_state.pt`` for ``resume``.

    Args:
        cfg: the run config.
        resume: a run folder or checkpoint folder to continue from.
        overwrite: allow a non-empty ``cfg.out_dir``.
        progress: ``progress(step, total, record)`` after every step.

    Returns:
        :class:`~daclip_kit.train.loop.TrainResult`.
    """
    return run(IRSDETask, cfg, resume=resume, overwrite=overwrite, progress=progress)
