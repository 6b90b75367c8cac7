"""Run config of ``daclip-kit train distill`` (torch-free): a K-step student of a diffusion teacher.

The sections are those of :class:`~daclip_kit.train.config.RestorationTrainConfig` (data, network,
sampler, embedder, optim, ema, validation: :class:`~daclip_kit.train.sections.NetworkTrainConfig`,
which this module takes from :mod:`.sections`, not from :mod:`.config`); what is new says which
deterministic sampler the teacher runs (``teacher_sampler``, ``teacher_steps``), how many
evaluations the student gets (``student_steps``) and what it is trained on (``loss``,
``gt_weight``). The method is described in :mod:`daclip_kit.train.distill` and ``docs/train.md``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ..components import check_component
from ..config import Component
from ..errors import ConfigError
from ..options import option
from ..plugins import get_registry
from .sections import NetworkTrainConfig, ValidationConfig, check_float, check_int

#: The SDE settings a teacher sampler and the student sampler take from ``[sampler]``.
SDE_KEYS = ("max_sigma", "T", "schedule", "eps")
#: Student evaluation counts (the speed ladder's rungs).
STUDENT_STEPS = (1, 2, 4)


def _default_teacher_sampler() -> Component:
    return Component("mrs", {"solver_type": "ode"})


#: ``student_lambda_min`` by what the teacher predicts (see :class:`DistillTrainConfig`).
STUDENT_LAMBDA_MIN = {"noise": 0.0, "clean": -5.0}


def student_sampler(sde: dict[str, Any], steps: int, lambda_min: float) -> dict[str, Any]:
    """The sampler settings saved with a student of ``steps`` evaluations (``{"name", "config"}``):
    ``mrs`` with a first-order data-prediction ODE step (a DDIM-type step) on the training SDE's
    own schedule over the uniform grid ``t_s, t_s (K-1)/K, ..., t_s/K``, ``t_s`` the last step whose
    half log-SNR is still >= ``lambda_min``; the last evaluation's clean-image prediction is the
    output."""
    return {"name": "mrs", "config": {**{k: sde[k] for k in SDE_KEYS}, "solver_type": "ode",
                                      "parameterization": "data", "order": 1, "training_schedule": True,
                                      "time_schedule": "linspace", "lambda_min": lambda_min,
                                      "num_sample_steps": steps}}


def _deterministic(sampler: Component) -> bool:
    """Whether the sampler settings describe a deterministic (ODE) run."""
    opts = sampler.options
    if "solver_type" in opts:
        return opts["solver_type"] == "ode"
    if "mode" in opts:
        return opts["mode"] == "ode"
    return False


@dataclass(frozen=True, kw_only=True)
class DistillTrainConfig(NetworkTrainConfig):
    """Distilling a diffusion restorer into a student of ``student_steps`` evaluations.

    Attributes:
        data, ema, validation: as in :class:`~daclip_kit.train.config.RestorationTrainConfig`
            (validation restores with the student's own ``student_steps``; leave
            ``validation.steps`` unset).
        network: the teacher's architecture (a registered denoiser, a plugin's included; default
            ``irsde-unet``); the student is a copy of it.
        init_from: the teacher's weights (a native folder, a released file read through the
            network's converter, or a weights name); required. The student starts from them.
        sampler: the SDE the teacher was trained with (``irsde``: ``max_sigma``, ``T``,
            ``schedule``, ``eps``); the teacher and student samplers take it from here.
        embedder: the frozen embedding provider the teacher is conditioned on (DA-CLIP).
        teacher_sampler: the teacher's deterministic sampler and its settings besides the SDE
            (default ``mrs`` ODE, data prediction, order 2); an SDE / posterior sampler is refused.
        teacher_steps: its network evaluations (20).
        teacher_pool: ``0`` (default): the teacher runs on every training batch (fresh crops and
            noise each step); ``N``: the teacher's outputs for ``N`` fixed patches and start states
            (the patch data set's first items) are computed once at the start and reused every
            epoch, ``N / batch_size * teacher_steps`` teacher evaluations in all instead of
            ``teacher_steps`` per step (small CPU runs; recomputed, identically, on resume).
        student_steps: the student's evaluations, 1, 2 or 4.
        student_lambda_min: where the student's grid starts: the last step whose half log-SNR
            ``log(alpha_t / sigma_t)`` (training SDE) is >= this. Default (``None``): ``0`` for a
            noise-predicting teacher, where ``alpha = sigma`` (t = 60 of the official T = 100), so
            the clean image implied by a noise prediction is well conditioned (at ``t = T`` it
            would be divided by ``alpha_T = eps``, 0.005); ``-5`` (the MRS default: ``t = T`` for
            the official SDE) for a clean-predicting teacher (``network.prediction = "clean"``),
            whose prediction needs no division, and where ``x_T`` really lives. The start state is
            always ``x_T = lq + lambda z``; the time is the network's input label.
        loss: ``l2`` (default), ``l1`` or ``lpips`` (LPIPS-Alex; needs its AlexNet weights) between
            the student's clean-image prediction and the target.
        gt_weight: GT mix-in: the loss is ``(1 - w) L(pred, teacher) + w L(pred, GT)``.
        optim: AdamW, lr 2e-4 with the IR-SDE betas, cosine to 1e-6.

    The loop settings are :class:`~daclip_kit.train.sections.LoopConfig`'s, as in the other
    trainers, with these defaults: ``max_steps`` 20,000, ``save_every`` 2,000, ``out_dir``
    ``runs/distill``.
    """

    teacher_sampler: Component = field(default_factory=_default_teacher_sampler)
    teacher_steps: int = 20
    teacher_pool: int = 0
    student_steps: int = 1
    student_lambda_min: float | None = None
    loss: Literal["l2", "l1", "lpips"] = "l2"
    gt_weight: float = 0.0
    # defaults of this trainer for fields of NetworkTrainConfig / LoopConfig
    validation: ValidationConfig = field(default_factory=lambda: ValidationConfig(every=1000, count=20))
    max_steps: int | None = 20_000
    save_every: int = 2_000
    out_dir: str = "runs/distill"

    @property
    def sde(self) -> dict[str, Any]:
        """The teacher's SDE settings (after :meth:`validate`)."""
        return {k: self.sampler.options[k] for k in SDE_KEYS}

    def validate(self) -> DistillTrainConfig:
        """Check every section (the registered components' settings included); returns the config
        with typed settings."""
        super().validate()
        if not self.init_from:
            raise ConfigError(f"train distill needs the teacher's weights: set {option('init_from', 'WEIGHTS')}, "
                              "e.g. a run folder's checkpoints/step-N/network-ema.")
        network = check_component("backbones", self.network, "network")
        if get_registry("backbones").get(network.name).kind != "denoiser":
            raise ConfigError(f"network {network.name!r} restores in one shot; distillation needs a diffusion "
                              "(denoiser) network such as irsde-unet.")
        sampler = check_component("samplers", self.sampler, "sampler")
        missing = [k for k in SDE_KEYS if k not in sampler.options]
        if missing:
            raise ConfigError(f"[sampler] {sampler.name!r} has no {', '.join(missing)}; give the SDE the teacher was "
                              "trained with (sampler.name = \"irsde\").")
        sde = {k: sampler.options[k] for k in SDE_KEYS}
        teacher = check_component("samplers", self.teacher_sampler, "teacher_sampler", extra=sde)
        if not _deterministic(teacher):
            raise ConfigError(f"teacher_sampler {teacher.name!r} with {dict(teacher.options)} is not deterministic; "
                              "use an ODE sampler (mrs or heun with solver_type = \"ode\", irsde with mode = \"ode\").")
        check_int("teacher_steps", self.teacher_steps, 1)
        check_int("teacher_pool", self.teacher_pool, 0)
        if self.student_steps not in STUDENT_STEPS:
            raise ConfigError(f"student_steps={self.student_steps!r} is out of range: it must be one of "
                              f"{', '.join(map(str, STUDENT_STEPS))}.")
        check_float("gt_weight", self.gt_weight, high=1.0)
        if self.student_lambda_min is not None:
            check_float("student_lambda_min", self.student_lambda_min, low=-math.inf)
        if self.loss not in ("l2", "l1", "lpips"):
            raise ConfigError(f"loss={self.loss!r} must be 'l2', 'l1' or 'lpips'.")
        embedder = check_component("embedders", self.embedder, "embedder") if self.uses_embedder else self.embedder
        return dataclasses.replace(self, network=network, sampler=sampler, teacher_sampler=teacher, embedder=embedder)
