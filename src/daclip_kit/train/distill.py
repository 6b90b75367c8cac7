"""``daclip-kit train distill``: a student that restores in K = 1, 2 or 4 network evaluations what a
deterministic teacher sampler produces in many.

Method: **trajectory regression distillation**, SinSR's deterministic-sampler distillation
(Wang et al., "SinSR: Diffusion-Based Image Super-Resolution in a Single Step", CVPR 2024:
regress the student's one-step output on the output of the teacher's deterministic sampler from
the same start state) extended to K steps with consistency distillation's rule that every state
of a trajectory maps to the trajectory's end (Song et al., "Consistency Models", ICML 2023):

1. each training patch gets a start state ``x_T = lq + lambda z`` (``z`` from the pair's own seed:
   the official start state the samplers use);
2. the frozen teacher runs ``teacher_sampler`` for ``teacher_steps`` evaluations from ``x_T``
   (default MRS ODE, 20), giving the target ``y`` (no gradients): on every batch, or once for a
   fixed pool of ``teacher_pool`` patches reused every epoch (small CPU runs: the teacher's 20
   evaluations per batch cost far more than the student's K);
3. the student (a copy of the teacher, trained) runs its own K-step sampler from the same
   ``x_T``: the ``mrs`` first-order data-prediction ODE step (a DDIM-type step) on the training
   SDE's schedule over the grid ``t_s, t_s(K-1)/K, ..., t_s/K`` (:func:`.distill_config.student_sampler`;
   ``t_s`` from ``student_lambda_min``: by default 60 of 100, where ``alpha = sigma``, for a
   noise-predicting teacher, and ``T`` for a clean-predicting one).
   At each of its K evaluations the clean-image prediction ``x0_k`` it implies is regressed on
   ``y``: ``loss = mean_k [(1 - w) L(x0_k, y) + w L(x0_k, GT)]`` with ``L`` = L2, L1 or LPIPS and
   ``w`` the GT mix-in. The state for the next evaluation is the solver's step with the
   prediction detached, so every intermediate state is one the student itself reaches at
   restore time (no train/test mismatch) and each step is back-propagated on its own.

If every ``x0_k`` equals ``y``, the first-order step keeps the state on the line from ``x_T`` to
``y`` and the last prediction (the sampler's output) is ``y``; for K = 1 this is SinSR's
regression. The student is saved with those sampler settings (``num_sample_steps = K``), so
``daclip-kit restore --weights STUDENT`` runs K evaluations with no extra flag.

All of the training machinery is the shared loop's (:mod:`.loop`) and the restoration task's
(:class:`~daclip_kit.train.restoration.RestorationTask`: data, conditioning, EMA, checkpoints,
validation); only the step differs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, default_collate

from ..core.sampler import noise_from_output, prediction_of
from ..core.sampling import sample
from ..factory import create_sampler
from ..ops.padding import padded_call
from ..pretrained import load_network
from .distill_config import STUDENT_LAMBDA_MIN, DistillTrainConfig, student_sampler
from .loop import Progress, StepContext, TrainResult, run
from .restoration import RestorationTask, resolve_init

log = logging.getLogger(__name__)


class DistillTask(RestorationTask):
    """The distillation side of :func:`~daclip_kit.train.loop.run` (see the module docstring)."""

    cfg: DistillTrainConfig

    def __init__(self, cfg: DistillTrainConfig, device: torch.device, checkpoint: Path | None):
        super().__init__(cfg, device, checkpoint)
        sde = cfg.sde
        self.teacher_sampler = create_sampler(cfg.teacher_sampler.name, **sde, **dict(cfg.teacher_sampler.options))
        self.prediction = prediction_of(self.net)  # the teacher's too (checked when the student was initialised)
        lambda_min = cfg.student_lambda_min
        if lambda_min is None:
            lambda_min = STUDENT_LAMBDA_MIN[self.prediction]
        self.student_settings = student_sampler(sde, cfg.student_steps, lambda_min)
        self.sampler = create_sampler(self.student_settings["name"], **self.student_settings["config"])
        assert cfg.init_from is not None  # required (DistillTrainConfig.check)
        teacher = load_network(cfg.network.name, resolve_init(cfg.init_from), config=dict(cfg.network.options))
        self.teacher = teacher.to(device).eval().requires_grad_(False)
        self.lpips = None
        if cfg.loss == "lpips":
            from ..metrics.perceptual import load_lpips

            self.lpips = load_lpips(device=device)
        log.info("distilling %s (%s, %d evaluations) into %d evaluation(s)", cfg.init_from, cfg.teacher_sampler.name,
                 cfg.teacher_steps, cfg.student_steps)
        if cfg.teacher_pool:
            self.dataset = self.teacher_pool(cfg.teacher_pool)

    def teacher_targets(self, lq: torch.Tensor, seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The start states ``x_T`` of ``(B, 3, H, W)`` LQ patches and the teacher's outputs from them."""
        x = self.start_states(seeds, lq)
        with torch.no_grad():
            target = sample(self.teacher, self.teacher_sampler, lq, self.condition(lq), steps=self.cfg.teacher_steps,
                            x_T=x, precision=self.cfg.precision, check_finite=False)
        return x, target

    def teacher_pool(self, size: int) -> TeacherPool:
        """``size`` training items (the patch data set's items over its successive epochs) with the
        teacher's output of each, computed once, in batches of ``data.batch_size``."""
        source, n = self.dataset, len(self.dataset)
        items = []
        for i in range(size):
            source.set_epoch(i // n)
            item = source[i % n]
            items.append({"lq": item["lq"], "gt": item["gt"], "seed": item["seed"]})
        pool = default_collate(items)
        targets = []
        for start in range(0, size, self.batch_size):
            lq = pool["lq"][start:start + self.batch_size].to(self.device)
            targets.append(self.teacher_targets(lq, pool["seed"][start:start + self.batch_size])[1].cpu())
        pool["target"] = torch.cat(targets)
        log.info("teacher pool: %d items, %d teacher evaluations of batches of %d", size,
                 -(-size // self.batch_size) * self.cfg.teacher_steps, self.batch_size)
        return TeacherPool(pool)

    def start_states(self, seeds: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
        """``x_T = lq + lambda z`` with each sample's ``z`` from its own seed (CPU generator), so
        a step is the same whatever the processes and micro-batches."""
        noise = torch.cat([torch.randn((1, *lq.shape[1:]), generator=torch.Generator().manual_seed(int(s)))
                           for s in seeds.tolist()])
        return self.sampler.noise_state(lq, noise=noise.to(lq.device, lq.dtype))

    def criterion(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """``loss`` between ``(B, 3, H, W)`` images: L2, L1 or LPIPS (inputs mapped to [-1, 1])."""
        if self.lpips is not None:
            return self.lpips(pred * 2 - 1, ref * 2 - 1).mean()
        return F.mse_loss(pred, ref) if self.cfg.loss == "l2" else F.l1_loss(pred, ref)

    def accumulate(self, batches: list[dict], ctx: StepContext) -> dict[str, float]:
        cfg, net = self.cfg, self.train_net
        k_steps, n = cfg.student_steps, len(batches)
        w = cfg.gt_weight
        totals = {"loss": 0.0, "loss_last": 0.0}
        for j, batch in enumerate(batches):
            lq = batch["lq"].to(self.device, non_blocking=True)
            gt = batch["gt"].to(self.device, non_blocking=True)
            cond = self.condition(lq)
            if "target" in batch:  # from the teacher pool
                x, target = self.start_states(batch["seed"], lq), batch["target"].to(self.device, non_blocking=True)
            else:
                x, target = self.teacher_targets(lq, batch["seed"])
            solver = self.sampler.solver(k_steps)
            for k, t in enumerate(solver.timesteps):
                with ctx.sync(j == n - 1 and k == k_steps - 1):
                    with ctx.autocast():
                        out = padded_call(lambda a, b, t=t, cond=cond: net(a, b, t, degradation=cond.degradation,
                                                                           content=cond.content),
                                          (x, lq), self.net.size_divisor, self.net.pad_mode).float()
                        eps = noise_from_output(out, self.prediction, self.sampler, x, lq, t)
                        clean = self.sampler.data_prediction(eps, x, lq, solver.alphas[k].to(x.device),
                                                             solver.sigmas[k].to(x.device))
                        loss = (1 - w) * self.criterion(clean, target)
                        if w:
                            loss = loss + w * self.criterion(clean, gt)
                    ctx.backward(loss / (n * k_steps))
                totals["loss"] += float(loss.detach()) / (n * k_steps)
                x = solver.step(eps.detach(), x, lq, draw=None)
            totals["loss_last"] += float(loss.detach()) / n
        return totals

    def sampler_record(self) -> dict[str, Any]:
        """A student restores with its own K-step sampler."""
        return self.student_settings


class TeacherPool(Dataset):
    """Training items with the teacher's output: ``{"lq", "gt", "seed", "target"}`` per item, from
    ``(N, ...)`` tensors held in memory (the same every epoch)."""

    def __init__(self, items: dict[str, torch.Tensor]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items["seed"])

    def __getitem__(self, index: int) -> dict:
        return {k: v[index] for k, v in self.items.items()}

    def set_epoch(self, epoch: int) -> None:
        """The pool is fixed: nothing changes between epochs."""


def train_distill(cfg: DistillTrainConfig, *, resume: str | Path | None = None, overwrite: bool = False,
                  progress: Progress | None = None) -> TrainResult:
    """Distil ``cfg.init_from`` into a ``cfg.student_steps``-evaluation student.

    Checkpoints are ``cfg.out_dir/checkpoints/step-N/{network,network-ema}``: native folders that
    record the student's sampler, so ``daclip-kit restore --weights FOLDER`` runs K evaluations.

    Args:
        cfg: the run config.
        resume: a run folder or checkpoint folder to continue from.
        overwrite: allow a non-empty ``cfg.out_dir``.
        progress: ``progress(step, total, record)`` after every step.

    Returns:
        :class:`~daclip_kit.train.loop.TrainResult`.
    """
    return run(DistillTask, cfg, resume=resume, overwrite=overwrite, progress=progress)
