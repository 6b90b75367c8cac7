"""Stage 2: training a restoration network with a frozen embedder (paper §3.2; FACTS §2.5-2.7).

The network, its sampler and the embedder are built through the registries from the run file, so
any registered backbone trains here, a plugin's included:

* a **denoiser** (the IR-SDE U-Net): per step, a batch of LQ/GT patches (balanced over
  degradations), the embedder's content and degradation embeddings of each LQ patch (no
  gradients; the embedder sees the patch, as the official ``LQ_clip``), ``t ~ U{1..T}`` per sample,
  ``x_t`` drawn from the sampler's forward marginal around the LQ image, and the sampler's
  training loss on the noise prediction (official maximum-likelihood L1 by default). Each
  sample's ``t`` and noise come from its own seed (``item["seed"]``), so a step is the same
  whatever the number of processes and micro-batches it is split into;
* a **one-shot backbone** (NAFNet, Restormer, PromptIR, a plugin's): ``loss`` between its output and
  GT (L1, L2, or NAFNet's PSNR loss), conditioned on the embedder's embeddings when the network
  takes them (``nafnet-daclip``, ``restormer-daclip``, ``promptir-daclip``; paper Tables 6 and 7).

An EMA of the weights is kept (``ema_pytorch`` semantics: warm-up copies, then a ramped decay;
:mod:`.ema`); checkpoints hold the network (``network``) and the EMA
(``network-ema``) as native folders that record the backbone name and, for denoisers, the
sampler settings, so ``daclip-kit restore --weights FOLDER`` restores with the trained process.

Example:
    >>> from daclip_kit.train import RestorationTrainConfig, train_restoration  # doctest: +SKIP
    >>> result = train_restoration(RestorationTrainConfig(out_dir="runs/irsde"))  # doctest: +SKIP
    >>> # daclip-kit restore LQ.png -o out --weights runs/irsde/checkpoints/step-N/network-ema
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F

from ..checkpoint import load_strict, read_pretrained_weights
from ..core.backbone import Denoiser, RestorationBackbone
from ..core.pipeline import RestorationPipeline, per_image_generators
from ..core.sampler import prediction_of
from ..errors import CheckpointError, ConfigError
from ..factory import create_backbone, create_embedder, create_sampler
from ..io import read_image
from ..model import provide, resolve_model
from ..ops.padding import padded_call
from ..plugins import get_registry
from ..pretrained import load_network, native_info, save_network
from ..types import Conditioning
from .config import RestorationTrainConfig
from .datasets import BalancedPatchDataset, round_robin
from .ema import EMA
from .loop import Progress, TrainResult, TrainTask, run
from .pairing import DaclipPairing
from .sections import NetworkTrainConfig

if TYPE_CHECKING:
    from .distill_config import DistillTrainConfig

log = logging.getLogger(__name__)

NETWORK_DIR = "network"
EMA_DIR = "network-ema"


def build_embedder(cfg: NetworkTrainConfig, device: torch.device, network: torch.nn.Module):
    """The frozen embedding provider of ``cfg.embedder`` (``None`` for ``name="none"`` or a
    network that takes no conditioning).

    Raises:
        ConfigError: its embedding size differs from the network's ``context_dim``.
    """
    if not cfg.uses_embedder or not getattr(network, "accepts", None):
        return None
    embedder = create_embedder(cfg.embedder.name, **{**dict(cfg.embedder.options), "device": str(device)})
    embedder.eval().requires_grad_(False)
    context_dim = int(getattr(network, "context_dim", 0) or 0)
    if context_dim and embedder.embed_dim != context_dim:
        raise ConfigError(f"The network takes {context_dim}-d embeddings but the {cfg.embedder.name} embedder "
                          f"gives {embedder.embed_dim}-d ones; set network.context_dim={embedder.embed_dim}.")
    return embedder


def resolve_init(ref: str) -> Path:
    """The network weights ``init_from`` names, through the one model resolver
    (:func:`daclip_kit.model.resolve_model`: any reference kind; a run or checkpoint folder gives its
    newest checkpoint's ``network-ema``, else ``network``).

    Raises:
        ConfigError: ``ref`` is a DA-CLIP, not a restoration network.
    """
    unit, _ = provide(resolve_model(ref))
    if unit.network is None:
        raise ConfigError(f"init_from={ref!r} is a DA-CLIP, not a restoration network; give a restorer's weights "
                          "(its DA-CLIP goes in [embedder] weights).")
    return unit.network


def load_network_folder(net: torch.nn.Module, folder: Path) -> torch.nn.Module:
    """``net``'s weights from the native folder of a checkpoint (loaded strictly, into ``net``
    itself), refusing another architecture."""
    info = native_info(folder)
    own = cast(Any, net).export_config()  # a registered backbone's
    if {k: info.config.get(k) for k in own} != own:
        raise CheckpointError(f"{str(folder)!r} holds a network with config {info.config}, but the run config "
                              f"asks for {own}; resume with the run's own config.toml.")
    load_strict(net, read_pretrained_weights(folder), source=str(folder))
    return net


def check_objective(objective: str, prediction: str, name: str) -> None:
    """Refuse an objective that does not fit what the network predicts (``noise`` or ``clean``).

    Raises:
        ConfigError: ``objective = "clean"`` with a noise-predicting network, or the reverse.
    """
    if (objective == "clean") != (prediction == "clean"):
        fix = ('set network.prediction = "clean" too' if objective == "clean"
               else 'use objective = "clean" (the "ml" and "noise" objectives are for noise-predicting networks)')
        raise ConfigError(f"objective={objective!r} but network {name!r} predicts the {prediction}; {fix}.")


def psnr_loss(out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """NAFNet's training loss: ``10 log10(MSE + 1e-8)`` per image, averaged over the batch (minus the
    mean PSNR of images in [0, 1], up to the constant; lower is better)."""
    mse = (out - gt).pow(2).flatten(1).mean(1)
    return (10 / math.log(10)) * torch.log(mse + 1e-8).mean()


#: ``loss`` of one-shot backbones: ``(output, gt) -> scalar``, both ``(B, 3, H, W)``.
ONE_SHOT_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss, "l2": F.mse_loss, "psnr": psnr_loss}


class RestorationTask(TrainTask):
    """The restoration side of :func:`~daclip_kit.train.loop.run`."""

    cfg: RestorationTrainConfig | DistillTrainConfig  # the latter for DistillTask
    #: a sampler with the training methods (random_timesteps, forward_noise, training_loss), None for one-shot networks
    sampler: Any

    def __init__(self, cfg: RestorationTrainConfig | DistillTrainConfig, device: torch.device,
                 checkpoint: Path | None):
        self.cfg = cfg
        self.device = device
        self.spec = get_registry("backbones").get(cfg.network.name)
        self.denoiser = self.spec.kind == "denoiser"
        self.sampler = create_sampler(cfg.sampler.name, **dict(cfg.sampler.options)) if self.denoiser else None
        if self.sampler is not None and not hasattr(self.sampler, "training_loss"):
            raise ConfigError(f"Sampler {cfg.sampler.name!r} cannot train networks (no training_loss); "
                              "use sampler.name = \"irsde\" for training and any sampler to restore.")
        net = create_backbone(cfg.network.name, **dict(cfg.network.options))
        if checkpoint is not None:
            load_network_folder(net, checkpoint / NETWORK_DIR)
        elif cfg.init_from:
            start = load_network(cfg.network.name, resolve_init(cfg.init_from), config=dict(cfg.network.options))
            if prediction_of(start) != prediction_of(net):
                raise ConfigError(f"init_from={cfg.init_from!r} predicts the {prediction_of(start)} but the run's "
                                  f"network predicts the {prediction_of(net)}; set network.prediction = "
                                  f"\"{prediction_of(start)}\" (and, for train restoration, the matching objective).")
            net.load_state_dict(start.state_dict(), strict=True)
            log.info("network initialised from %s", cfg.init_from)
        self.net = net.to(device).train()
        self.train_net: torch.nn.Module = self.net
        if self.denoiser and hasattr(cfg, "objective"):  # a distill run has none: its loss is on images
            check_objective(cfg.objective, prediction_of(net), cfg.network.name)
        self.embedder = build_embedder(cfg, device, self.net)
        self.pairing = DaclipPairing(cfg.embedder.name, cfg.embedder.options, self.embedder)
        self.ema = None
        if cfg.ema.enabled:
            e = cfg.ema
            self.ema = EMA(self.net, decay=e.decay, update_every=e.update_every, update_after_step=e.update_after_step,
                           inv_gamma=e.inv_gamma, power=e.power)
            if checkpoint is not None:
                load_network_folder(self.ema.model, checkpoint / EMA_DIR)
        d = cfg.data
        balanced = BalancedPatchDataset(d.root, d.split, degradations=d.degradations, patch_size=d.patch_size,
                                        augment=d.augment, seed=cfg.seed, new_share=d.new_share)
        self.dataset = balanced
        self.batch_size = d.batch_size
        self.accumulate_steps = d.accumulate_steps
        self.num_workers = d.num_workers
        v = cfg.validation
        self.val_pairs = round_robin(d.root, v.split, d.degradations, v.count) if v.every else []
        log.info("%s: %d trainable parameters; %d training pairs in %d folders (%s)", cfg.network.name,
                 sum(p.numel() for p in self.net.parameters()), len(self.dataset), len(balanced.names),
                 ", ".join(balanced.names))
        self.degradations = list(balanced.names)

    def trainable(self):
        return list(self.net.named_parameters())

    def wrap(self, wrap):
        self.train_net = wrap(self.net)

    @torch.no_grad()
    def condition(self, lq: torch.Tensor) -> Conditioning:
        """Embeddings of ``(B, 3, H, W)`` LQ images as float32 conditioning."""
        if self.embedder is None:
            return Conditioning()
        return Conditioning.from_embedding(self.embedder.embed_image(lq).to(dtype=torch.float32))

    def draws(self, seeds: torch.Tensor, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample time steps ``(B, 1, 1, 1)`` (long) and noise ``(B, *shape)`` from each
        sample's own seed (a CPU generator each), on the training device."""
        ts, noises = [], []
        for seed in seeds.tolist():
            g = torch.Generator().manual_seed(int(seed))
            ts.append(self.sampler.random_timesteps(1, g))
            noises.append(torch.randn((1, *shape), generator=g))
        return torch.cat(ts).to(self.device), torch.cat(noises).to(self.device)

    def loss(self, batch: dict):
        net = self.train_net
        lq = batch["lq"].to(self.device, non_blocking=True)
        gt = batch["gt"].to(self.device, non_blocking=True)
        cond = self.condition(lq)
        if not self.denoiser:
            out = padded_call(lambda image: net(image, cond), (lq,), self.net.size_divisor, self.net.pad_mode).float()
            return ONE_SHOT_LOSSES[self.cfg.loss](out, gt), {}
        t, noise = self.draws(batch["seed"], tuple(gt.shape[1:]))
        x_t, _ = self.sampler.forward_noise(gt, lq, t, noise=noise.to(gt.dtype))
        noise = padded_call(lambda a, b: net(a, b, t.reshape(-1), degradation=cond.degradation, content=cond.content),
                            (x_t, lq), self.net.size_divisor, self.net.pad_mode)
        cfg = self.cfg
        assert isinstance(cfg, RestorationTrainConfig)  # a distillation has its own accumulate
        loss = self.sampler.training_loss(noise.float(), x_t, gt, lq, t, objective=cfg.objective, loss=cfg.loss)
        return loss, {}

    def after_step(self, step: int) -> None:
        if self.ema is not None:
            self.ema.update()

    def checkpoint_units(self):
        units = getattr(self.net, "checkpoint_units", None)
        return list(units()) if callable(units) else []

    def memory_trace(self, cfg: RestorationTrainConfig, micro_batch: int):
        """The network's call on ``micro_batch`` patches of ``cfg.data.patch_size`` (padded to the
        network's size divisor), with its embeddings."""
        divisor = int(getattr(self.net, "size_divisor", 1) or 1)
        side = -(-cfg.data.patch_size // divisor) * divisor
        x = torch.empty(micro_batch, 3, side, side, device="meta")
        context = int(getattr(self.net, "context_dim", 0) or 0)
        accepts = set(getattr(self.net, "accepts", ()) or ()) if self.embedder is not None else set()
        emb = {role: torch.empty(micro_batch, context, device="meta") for role in ("degradation", "content")
               if role in accepts and context}
        if self.denoiser:
            return self.net, (x, x, torch.empty(micro_batch, device="meta")), emb
        return self.net, (x, Conditioning(**emb)), {}

    def sampler_record(self) -> dict[str, Any] | None:
        """The sampler the saved network restores with (``None``: a one-shot network)."""
        if not self.denoiser:
            return None
        return {"name": self.cfg.sampler.name, "config": dict(self.cfg.sampler.options)}

    def provenance(self) -> dict[str, Any]:
        """Where the saved weights come from: the run, its base model, its data, this daclip-kit."""
        from .. import __version__

        d = self.cfg.data
        return {"run": str(self.cfg.out_dir), "base_model": self.cfg.init_from,
                "data": {"root": str(d.root), "degradations": self.degradations},
                "daclip_kit": __version__}

    def _save(self, net: torch.nn.Module, path: Path) -> Path:
        return save_network(net, path, name=self.cfg.network.name, config=dict(self.cfg.network.options),
                            sampler=self.sampler_record(), daclip=self.pairing.record(path),
                            provenance=self.provenance())

    def model_writers(self):
        writers = dict(self.pairing.writers())  # first: the networks record its hash
        writers[NETWORK_DIR] = lambda path: self._save(self.net, path)
        ema = self.ema
        if ema is not None:
            writers[EMA_DIR] = lambda path: self._save(ema.model, path)
        writers.update(self.pairing.index_writer(EMA_DIR if self.ema is not None else NETWORK_DIR,
                                                 self.provenance()))
        return writers

    def state(self):
        return {"ema": self.ema.state()} if self.ema is not None else {}

    def load_state(self, state):
        if self.ema is not None and "ema" in state:
            self.ema.load_state(state["ema"])

    @torch.no_grad()
    def validation_interval(self, steps_per_epoch: int) -> int:
        return self.cfg.validation.every

    def validate(self, step: int) -> dict[str, float]:
        """Mean PSNR (official protocol) of restoring the validation pairs (a short sampler run
        for denoisers); the first :attr:`val_images_wanted` pairs go to the loop as LQ | restored |
        GT images (``OUT/val-images/step-N/NN-<degradation>-<name>.png``)."""
        from ..metrics.peak_snr import psnr

        v = self.cfg.validation
        net = self.ema.model if (v.use_ema and self.ema is not None) else self.net
        was_training = net.training
        net.eval()
        if self.denoiser:
            pipe = RestorationPipeline(embedder=self.embedder, denoiser=cast(Denoiser, net), sampler=self.sampler)
        else:
            pipe = RestorationPipeline(embedder=self.embedder, backbone=cast(RestorationBackbone, net))
        scores = []
        for i, pair in enumerate(self.val_pairs):
            lq, gt = read_image(pair.lq).to(self.device), read_image(pair.gt)
            out = pipe(lq, steps=v.steps, generator=per_image_generators(self.cfg.seed, 1)).image
            scores.append(float(psnr(out.cpu(), gt)[0]))
            if i < self.val_images_wanted:
                self.add_val_image(f"{i:02d}-{pair.degradation}-{Path(pair.lq).stem}", lq, out, gt)
        net.train(was_training)
        return {"psnr": sum(scores) / len(scores)} if scores else {}


def train_restoration(cfg: RestorationTrainConfig, *, resume: str | Path | None = None, overwrite: bool = False,
                      progress: Progress | None = None) -> TrainResult:
    """Train the restoration network as ``cfg`` says.

    Checkpoints are ``cfg.out_dir/checkpoints/step-N/{network,network-ema}`` (native folders,
    loadable with ``daclip-kit restore --weights``) plus ``trainer_state.pt`` for ``resume``.

    Args:
        cfg: the run config.
        resume: a run folder or checkpoint folder to continue from.
        overwrite: allow a non-empty ``cfg.out_dir``.
        progress: ``progress(step, total, record)`` after every step.

    Returns:
        :class:`~daclip_kit.train.loop.TrainResult`.
    """
    return run(RestorationTask, cfg, resume=resume, overwrite=overwrite, progress=progress)


#: The name stage 2 had when it trained the IR-SDE U-Net only.
train_irsde = train_restoration
