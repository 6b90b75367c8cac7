"""Stage 1: contrastive training of DA-CLIP's controller (paper §3.1; FACTS §1.7).

CLIP is frozen (:meth:`DaCLIP.lock_clip`); the controller tower and DA-CLIP's own
``logit_scale`` are trained on ``contrastive_loss`` (content embedding vs caption) plus
``degra_loss`` (degradation embedding vs degradation word). The CSV title
``"<caption>: <degradation>"`` is split into the two texts, each tokenised to the context length
and concatenated, as ``DaCLIP.forward`` expects. ``logit_scale`` is clamped to ``[0, ln 100]``
after every step.

The loss is always that of the **global batch** (``data.batch_size`` rows, every process's and
every micro-batch's): features are gathered over the processes (as open_clip's
``gather_features`` with ``local_loss=False``), and with ``data.accumulate_steps = k > 1`` the
features of all ``k`` micro-batches are first computed without gradients and the loss of micro-batch
``j`` uses its live features with the cached ones of the others (open_clip's ``--accum-freq``).
The gradients are scaled so that the summed (and, over processes, averaged) gradient equals the
gradient of that single global-batch loss, ``logit_scale`` included.

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

from ..checkpoint import load_strict, read_state_dict, state_dict_sha256
from ..core.ood import OodCalibration, calibrate_embeddings
from ..data.mini import source_photos
from ..embedders.daclip.architectures import clip_kwargs
from ..embedders.daclip.architectures import model_config as bundled_config
from ..embedders.daclip.convert import load_daclip, load_official_daclip, save_daclip
from ..embedders.daclip.loss import DaClipLoss
from ..embedders.daclip.model import DaCLIP
from ..embedders.daclip.provider import daclip_weights
from ..embedders.preprocess import clip_preprocess
from ..embedders.tokenizer import tokenize
from ..errors import CheckpointError, UnknownComponentError, WeightsNotFoundError
from ..io import read_image
from ..weights import is_hub_ref
from .calibrate import CLEAN_SET
from .config import DaClipModelConfig, DaClipTrainConfig
from .datasets import CaptionImageDataset
from .loop import Progress, StepContext, TrainResult, TrainTask, run

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
    if is_hub_ref(source) or path.is_dir() or (not path.exists() and _is_weights_name(source)):
        try:  # the one model resolver: a name, hf://, a DA-CLIP folder, a run or checkpoint, a restorer's pair
            path = daclip_weights(source, download=True)
        except WeightsNotFoundError as exc:
            if not path.is_dir():
                raise
            raise CheckpointError(f"model.pretrained={source!r} is a folder but neither a DA-CLIP folder nor a run "
                                  f"folder with {MODEL_DIR}/ checkpoints; give a native DA-CLIP folder, a "
                                  "`daclip-kit train daclip` run folder, a released .pt or a weights name.") from exc
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


def _is_weights_name(text: str) -> bool:
    """Whether ``text`` is a registered weights name (``daclip-kit weights list``)."""
    from ..weights import get_weight_spec, is_path_like

    if is_path_like(text):
        return False
    try:
        get_weight_spec(text)
    except UnknownComponentError:
        return False
    return True


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


#: The feature keys of ``DaCLIP.forward`` that enter the loss.
FEATURES = ("image_features", "text_features", "image_degra_features", "text_degra_features")


class DaClipTask(TrainTask):
    """The DA-CLIP side of :func:`~daclip_kit.train.loop.run`."""

    #: the best checkpoint names the degradation words of the most val images
    best_metric = ("accuracy", "max")

    def __init__(self, cfg: DaClipTrainConfig, device: torch.device, checkpoint: Path | None):
        self.cfg = cfg
        self.device = device
        model = load_daclip(checkpoint / MODEL_DIR) if checkpoint is not None else build_daclip(cfg.model)
        self.model = model.lock_clip().to(device).train()
        self.model.clip.eval()
        self.train_model: torch.nn.Module = self.model
        self.criterion = DaClipLoss()
        self.dataset = CaptionImageDataset(cfg.data.csv_path(), self.model.image_size, seed=cfg.seed,
                                           crop=cfg.data.crop, new_share=cfg.data.new_share,
                                           synthesize=cfg.data.synthesize)
        #: The last step taken (named in the messages of a checkpoint's calibration).
        self.step = 0
        self._digest_at: tuple[int, str] | None = None
        self.batch_size = cfg.data.batch_size
        self.accumulate_steps = cfg.data.accumulate_steps
        self.num_workers = cfg.data.num_workers
        v = cfg.validation
        self.val_rows = CaptionImageDataset(v.csv_path(cfg.data), self.model.image_size) if v.enabled else None
        words = set(self.dataset.degradations) | set(self.val_rows.degradations if self.val_rows else ())
        #: The degradation words a val image is classified into (training and val CSVs); recorded in
        #: the saved folder (``config.degradations``) as the model's own words.
        self.class_words = sorted(words)
        self.model.degradations = tuple(self.class_words)
        trainable = sum(p.numel() for _, p in self.trainable())
        log.info("DA-CLIP: %d trainable parameters (controller + logit_scale); %d training rows%s",
                 trainable, len(self.dataset), f", {len(self.val_rows)} val rows" if self.val_rows else "")

    def trainable(self):
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def wrap(self, wrap):
        self.train_model = wrap(self.model)

    def tokens(self, captions: list[str], degradations: list[str]) -> torch.Tensor:
        """``(B, 2 * context_length)`` ids: the caption's, then the degradation word's."""
        ctx = self.model.context_length
        return torch.cat([tokenize(captions, ctx), tokenize(degradations, ctx)], dim=1)

    def _inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = batch["pixels"].to(self.device, non_blocking=True)
        tokens = self.tokens(list(batch["caption"]), list(batch["degradation"])).to(self.device)
        return pixels, tokens

    def accumulate(self, batches: list[dict], ctx: StepContext) -> dict[str, float]:
        """One step on the global batch (see the module docstring).

        Process ``r`` of ``W`` with ``k`` micro-batches of ``m`` rows: the loss ``L`` over all
        ``W k m`` rows (in rank-major, then micro-batch order: the single-process order) is
        computed ``k`` times, each time with the live features of one micro-batch; backward of
        ``W * L`` with the logit scale's gradient divided by ``W k`` gives, after the sum over
        micro-batches and the average over processes, exactly ``dL/dθ``.
        """
        dist, k = ctx.dist, len(batches)
        inputs = [self._inputs(b) for b in batches]
        scale_split = dist.world * k
        first = None
        if k > 1:
            with torch.no_grad(), ctx.autocast():
                cached = [self.model(*x) for x in inputs]
            base = {key: torch.cat([c[key].float() for c in cached]) for key in FEATURES}
        else:
            with ctx.sync(True), ctx.autocast():
                first = self.train_model(*inputs[0])
            base = {key: first[key].float().detach() for key in FEATURES}
        gathered = {key: dist.gather(base[key]) for key in FEATURES}
        rows = [len(x[0]) for x in inputs]
        for j in range(k):
            with ctx.sync(j == k - 1):
                if first is not None:
                    out = first
                else:
                    with ctx.autocast():
                        out = self.train_model(*inputs[j])
                lo = sum(rows[:j])
                features = {}
                for key in FEATURES:
                    own = base[key]
                    own = torch.cat([own[:lo], out[key].float(), own[lo + rows[j]:]])
                    parts = list(gathered[key])
                    parts[dist.rank] = own
                    features[key] = torch.cat(parts)
                scale = out["logit_scale"].float()
                scale = scale.detach() + (scale - scale.detach()) / scale_split
                contrastive, degra = self.criterion(**features, logit_scale=scale)
                loss = contrastive + degra
                ctx.backward(loss * dist.world)
        return {"loss": float(loss.detach()), "contrastive_loss": float(contrastive.detach()),
                "degra_loss": float(degra.detach()), "logit_scale": float(out["logit_scale"].detach())}

    def checkpoint_units(self):
        """The transformer blocks of both vision towers: the controller's, and CLIP's, whose
        frozen blocks carry the controller's hiddens and so the gradient."""
        return [*self.model.visual_control.transformer.resblocks, *self.model.clip.visual.transformer.resblocks]

    def memory_trace(self, cfg: DaClipTrainConfig, micro_batch: int):
        """DA-CLIP's training forward on ``micro_batch`` images and caption/degradation token rows."""
        size, ctx = self.model.image_size, self.model.context_length
        pixels = torch.empty(micro_batch, 3, size, size, device="meta")
        tokens = torch.empty(micro_batch, 2 * ctx, dtype=torch.long, device="meta")
        return self.model, (pixels, tokens), {}

    def after_step(self, step: int) -> None:
        self.step = step
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)

    def model_writers(self):
        return {MODEL_DIR: self._write_model}

    def _write_model(self, path: Path) -> None:
        """Save the DA-CLIP with a calibration measured on the weights saved, or none.

        The calibration of the last validation holds only if the weights have not changed since
        (a validation at this step); otherwise (a later step, or one inherited from
        ``model.pretrained``) the val set is measured again now, as a validation does, or, without
        val data, the calibration is dropped with a warning and the folder is uncalibrated.
        """
        model = self.model
        digest = self._digest() if model.ood is not None or self.val_rows is not None else None
        ood = OodCalibration.from_dict(model.ood) if model.ood is not None else None
        if digest is not None and not (ood is not None and ood.measured_on(digest)):  # not a validation's of now
            if self.val_rows is not None:
                _, calibration = self._evaluate()
                self._set_calibration(calibration)
                log.info("step %d: calibrated the unknown-degradation check on the val set for the checkpoint "
                         "(%s threshold %.4f)", self.step, calibration.statistic, calibration.threshold)
            else:
                log.warning("step %d: the DA-CLIP's unknown-degradation calibration was not measured on the weights "
                            "being saved (it comes from model.pretrained or an earlier step) and there is no val "
                            "set to measure it again, so it is dropped and the checkpoint is uncalibrated "
                            "(unknown_degradation: null). Enable validation, or run `daclip-kit classify "
                            "--calibrate DATA_ROOT --weights CHECKPOINT`.", self.step)
                model.ood = model.ood_state = None
        save_daclip(model, path, digest=digest)

    def _digest(self) -> str:
        """:func:`~daclip_kit.checkpoint.state_dict_sha256` of the model at this step, computed once per step
        (a validation and the checkpoint of the same step share it: no optimizer step comes between)."""
        if self._digest_at is None or self._digest_at[0] != self.step:
            self._digest_at = (self.step, state_dict_sha256(self.model))
        return self._digest_at[1]

    def validation_interval(self, steps_per_epoch: int) -> int:
        if self.val_rows is None:
            return 0
        return self.cfg.validation.every or steps_per_epoch

    def validate(self, step: int) -> dict[str, float]:
        """Loss and degradation accuracy on the val CSV (official per-epoch evaluation); the model's
        calibration is measured on the same pass."""
        metrics, calibration = self._evaluate()
        self._set_calibration(calibration)
        return metrics

    def _set_calibration(self, calibration: OodCalibration) -> None:
        """Make ``calibration`` (and its reference state) the model's: saved with its weights."""
        self.model.ood = calibration.to_dict()
        self.model.ood_state = dict(calibration.state) if calibration.state is not None else None

    @torch.no_grad()
    def _evaluate(self) -> tuple[dict[str, float], OodCalibration]:
        """The validation metrics and the calibration of the current weights (recording their digest).

        The unknown-degradation check (:mod:`daclip_kit.core.ood`, the default embedding-space
        statistic) takes the val rows' degradation embeddings of this same pass as its reference set,
        each row scored without itself: no extra pass over the (much larger) training rows, so a
        validation costs what it did. ``classify --calibrate ROOT --reference train`` adds training
        images to the reference set afterwards."""
        rows = self.val_rows
        assert rows is not None  # validation runs only with val rows (validation_interval)
        model = self.model
        was_training = model.training
        model.eval()
        words = tokenize(self.class_words, model.context_length).to(self.device)
        word_features = model.encode_text(words, normalize=True).float()
        size = self.cfg.validation.batch_size or self.cfg.data.batch_size
        sums = {"contrastive_loss": 0.0, "degra_loss": 0.0}
        correct = 0
        embedded: list[torch.Tensor] = []
        classes: list[str] = []
        for lo in range(0, len(rows), size):
            idx = range(lo, min(lo + size, len(rows)))
            pixels = torch.cat([clip_preprocess(read_image(rows.paths[i]), model.image_size) for i in idx])
            captions = [rows.captions[i] for i in idx]
            truth = [rows.degradations[i] for i in idx]
            batch = {"pixels": pixels, "caption": captions, "degradation": truth}
            out = model(*self._inputs(batch))
            contrastive, degra = self.criterion(**{k: out[k].float() for k in FEATURES},
                                                logit_scale=out["logit_scale"].float())
            sums["contrastive_loss"] += float(contrastive) * len(idx)
            sums["degra_loss"] += float(degra) * len(idx)
            logits = out["logit_scale"].float() * out["image_degra_features"].float() @ word_features.T
            guess = logits.argmax(dim=1).tolist()
            correct += sum(self.class_words[g] == t for g, t in zip(guess, truth, strict=True))
            embedded.append(out["image_degra_features"].float().cpu())
            classes += truth
        clean = self._clean_embeddings()
        model.train(was_training)
        model.clip.eval()
        calibration = calibrate_embeddings(torch.cat(embedded), classes, self.class_words,
                                           false_alarm=self.cfg.validation.false_alarm,
                                           detection={CLEAN_SET: clean} if len(clean) else None,
                                           state_dict_sha256=self._digest(), groups=source_photos(rows.paths))
        n = len(rows)
        result = {k: v / n for k, v in sums.items()}
        extra = {"ood_threshold": calibration.threshold, "ood_val_false_alarm": calibration.val_false_alarm}
        if CLEAN_SET in calibration.detection:
            extra["ood_clean_detection"] = calibration.detection[CLEAN_SET]
        return {"loss": result["contrastive_loss"] + result["degra_loss"], **result, "accuracy": correct / n,
                **extra}, calibration

    def _clean_embeddings(self) -> torch.Tensor:
        """``(M, D)`` the normalised degradation embeddings of the val rows' clean images
        (``.../GT/<name>`` beside ``.../LQ/<name>``, where present): the out-of-distribution set of
        the calibration."""
        model = self.model
        assert self.val_rows is not None  # called by validate
        paths = [p.parent.parent / "GT" / p.name for p in map(Path, self.val_rows.paths)
                 if p.parent.name == "LQ"]
        paths = [p for p in paths if p.is_file()]
        size = self.cfg.validation.batch_size or self.cfg.data.batch_size
        out = [torch.zeros(0, model.embed_dim)]
        for lo in range(0, len(paths), size):
            pixels = torch.cat([clip_preprocess(read_image(p), model.image_size) for p in paths[lo:lo + size]])
            embedding = model.encode_image(pixels.to(self.device), control=True).degradation
            assert embedding is not None  # control=True gives it
            out.append(torch.nn.functional.normalize(embedding.float(), dim=-1).cpu())
        return torch.cat(out)


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
