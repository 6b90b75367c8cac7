"""DA-CLIP: a frozen open_clip CLIP plus a degradation-aware controller (paper §3.1, Fig. 3a).

The controller is a copy of the CLIP vision tower whose blocks each feed a zero-initialised
``Linear(width, width)``. Its pooled output is the *degradation* embedding. The per-block linear
outputs ("hiddens") are added to the frozen tower after its blocks in mirrored order (block ``i``
receives hidden ``L-1-i``) on all tokens; the controlled tower's pooled output is the *content*
embedding.

The module's ``state_dict()`` has exactly the keys of the official ``DaCLIP`` class, including the
``visual.*`` alias of ``clip.visual.*`` and the two logit scales, so released checkpoints load
strictly. open_clip is used as installed; the towers are run by :func:`run_tower`, which reads the
open_clip submodules instead of calling ``VisionTransformer.forward`` (it has no control input).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError, ShapeError
from ...types import ImageEmbedding
from .architectures import clip_kwargs


class ControlTransformer(nn.Module):
    """A copied open_clip ``Transformer`` with one zero-initialised linear after each block.

    Attributes:
        transformer: the copied block stack (keys ``transformer.resblocks.N.*``).
        zero_modules: ``Linear(width, width)`` with bias per block, zero at construction.
    """

    def __init__(self, transformer: Any):  # an open_clip Transformer (open_clip has no type information)
        super().__init__()
        self.transformer = transformer
        width = transformer.width
        linears = [nn.Linear(width, width, bias=True) for _ in transformer.resblocks]
        for linear in linears:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)
        self.zero_modules = nn.ModuleList(linears)

    @property
    def resblocks(self) -> nn.ModuleList:
        return self.transformer.resblocks

    @property
    def batch_first(self) -> bool:
        return getattr(self.transformer, "batch_first", True)


def _check_vision_tower(visual: nn.Module) -> None:
    needed = ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer", "ln_post", "proj")
    missing = [n for n in needed if not hasattr(visual, n)]
    if missing:
        raise ConfigError(
            f"DA-CLIP needs an open_clip ViT vision tower; {type(visual).__name__} lacks {missing}."
        )
    if getattr(visual, "attn_pool", None) is not None or getattr(visual, "final_ln_after_pool", False):
        raise ConfigError("DA-CLIP supports ViT towers with token or average pooling only "
                          "(no attentional pooling, no final_ln_after_pool).")


def run_tower(visual: Any, pixels: torch.Tensor, *,
              control: Sequence[torch.Tensor] | None = None,
              zero_modules: Sequence[nn.Module] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run an open_clip ViT tower over preprocessed pixels.

    Args:
        visual: an open_clip ``VisionTransformer`` (or the controller copy).
        pixels: ``(B, 3, S, S)`` normalised pixels at the tower's image size.
        control: per-block hiddens to add after the blocks, in the controller's block order; block
            ``i`` receives ``control[L-1-i]``. Each is ``(B, 1+grid², width)``.
        zero_modules: when given, the output of ``zero_modules[i]`` on block ``i``'s output is
            collected (the controller); the stream itself is not modified by it.

    Returns:
        ``(pooled @ proj, hiddens)`` with pooled ``(B, embed_dim)`` and hiddens a list of
        ``(B, 1+grid², width)`` tensors (empty without ``zero_modules``).
    """
    blocks = visual.transformer.resblocks
    if control is not None and len(control) != len(blocks):
        raise ShapeError(f"control has {len(control)} hiddens for a tower of {len(blocks)} blocks.")
    x = visual.conv1(pixels.to(visual.conv1.weight.dtype))
    x = x.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.patch_dropout(x)
    x = visual.ln_pre(x)

    batch_first = getattr(visual.transformer, "batch_first", True)
    if not batch_first:
        x = x.transpose(0, 1)
    hiddens: list[torch.Tensor] = []
    last = len(blocks) - 1
    for i, block in enumerate(blocks):
        x = block(x)
        if zero_modules is not None:
            h = zero_modules[i](x)
            hiddens.append(h if batch_first else h.transpose(0, 1))
        if control is not None:
            c = control[last - i]
            x = x + (c if batch_first else c.transpose(0, 1))
    if not batch_first:
        x = x.transpose(0, 1)

    x = visual.ln_post(x)
    pooled = x[:, 1:].mean(dim=1) if getattr(visual, "pool_type", "tok") == "avg" else x[:, 0]
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return pooled, hiddens


class DaCLIP(nn.Module):
    """DA-CLIP network with the official module layout.

    Args:
        clip: an open_clip ``CLIP`` with a ViT vision tower. The controller is a deep copy of its
            vision tower taken now, so pass an already loaded CLIP to start from its weights.
        config: the open_clip model JSON it was built from (kept for :meth:`export_config`).

    Attributes:
        clip: the frozen CLIP (text tower flattened onto it, as in open_clip ``CLIP``).
        visual: the same module object as ``clip.visual`` (the official alias).
        visual_control: the controller tower; its ``transformer`` is a :class:`ControlTransformer`.
        logit_scale: DA-CLIP's own (trained) log logit scale, separate from ``clip.logit_scale``.
        degradations: the degradation words it was trained on, in its training label order
            (``None``: not recorded; readers then assume the ten official words).
        ood: the out-of-distribution calibration on its val set
            (:meth:`~daclip_kit.core.ood.OodCalibration.to_dict`), or ``None``. It holds for the
            weights whose digest it records (``state_dict_sha256``); changing the weights (training)
            does not update it, so the saving and loading functions leave it out where the digest
            differs (:func:`~daclip_kit.embedders.daclip.convert.save_daclip`).
        ood_state: the reference tensors of an embedding-space calibration (``{"bank": ...}`` or
            ``{"means": ..., "precision": ...}``, :mod:`daclip_kit.core.ood`), written to and read from
            the folder's ``ood.safetensors``; ``None`` for none (or a ``max_prob`` calibration). Not
            part of the weights (nor of their digest).
    """

    def __init__(self, clip: Any, *, config: Mapping[str, Any] | None = None):
        super().__init__()
        _check_vision_tower(clip.visual)
        self.logit_scale = nn.Parameter(clip.logit_scale.detach().clone())
        self.clip = clip
        self.visual = clip.visual
        self.visual_control = copy.deepcopy(clip.visual)
        self.visual_control.transformer = ControlTransformer(self.visual_control.transformer)
        self.model_config = copy.deepcopy(dict(config)) if config is not None else None
        self.degradations: tuple[str, ...] | None = None
        self.ood: dict[str, Any] | None = None
        self.ood_state: dict[str, torch.Tensor] | None = None

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DaCLIP:
        """Build a randomly initialised DA-CLIP from an open_clip model JSON dict
        (e.g. :func:`~daclip_kit.embedders.daclip.architectures.model_config` ``("daclip_ViT-B-32")``)."""
        import open_clip

        try:
            clip = open_clip.CLIP(**clip_kwargs(config))
        except TypeError as exc:
            raise ConfigError(f"Invalid DA-CLIP config {dict(config)}: {exc}") from exc
        return cls(clip, config=config)

    def export_config(self) -> dict[str, Any]:
        """The JSON-serialisable config written to ``config.json`` by ``save_pretrained``."""
        if self.model_config is None:
            raise ConfigError("This DaCLIP was built without a config; build it with DaCLIP.from_config().")
        out: dict[str, Any] = {"kind": "daclip", "model_config": copy.deepcopy(self.model_config)}
        if self.degradations is not None:
            out["degradations"] = list(self.degradations)
        if self.ood is not None:
            out["ood"] = copy.deepcopy(self.ood)
        return out

    # -- properties --------------------------------------------------------------------------

    @property
    def embed_dim(self) -> int:
        return int(self.visual.proj.shape[1])

    @property
    def image_size(self) -> int:
        size = self.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def context_length(self) -> int:
        return int(self.clip.context_length)

    @property
    def vocab_size(self) -> int:
        return int(self.clip.vocab_size)

    def lock_clip(self) -> DaCLIP:
        """Freeze the whole CLIP (both towers); the controller and ``logit_scale`` stay trainable."""
        for p in self.clip.parameters():
            p.requires_grad_(False)
        return self

    # -- encoders ----------------------------------------------------------------------------

    def encode_degradation(self, pixels: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the controller.

        Args:
            pixels: ``(B, 3, S, S)`` preprocessed pixels (CLIP mean/std, ``S`` = image size).

        Returns:
            ``(degradation, hiddens)``: the unnormalised ``(B, embed_dim)`` degradation embedding
            and the per-block zero-linear outputs, each ``(B, 1+grid², width)`` (batch first).
        """
        vc = self.visual_control
        return run_tower(vc, pixels, zero_modules=vc.transformer.zero_modules)

    def encode_image(self, pixels: torch.Tensor, *, control: bool = True,
                     normalize: bool = False) -> ImageEmbedding:
        """Official ``encode_image``: content and degradation embeddings of preprocessed pixels.

        Args:
            pixels: ``(B, 3, S, S)`` preprocessed pixels.
            control: ``False`` gives the plain CLIP image embedding as ``content`` and no
                degradation (official ``control=False``).
            normalize: L2-normalise the embeddings.

        Returns:
            :class:`ImageEmbedding` with ``content`` and ``degradation`` ``(B, embed_dim)``.
        """
        if control:
            degradation, hiddens = self.encode_degradation(pixels)
            content, _ = run_tower(self.visual, pixels, control=hiddens)
        else:
            content, _ = run_tower(self.visual, pixels)
            degradation = None
        emb = ImageEmbedding(content, degradation)
        return emb.normalized() if normalize else emb

    def encode_text(self, tokens: torch.Tensor, *, normalize: bool = False) -> torch.Tensor:
        """Frozen CLIP text features of ``(N, context_length)`` token ids -> ``(N, embed_dim)``."""
        checkable = tokens.numel() and not tokens.is_meta  # a meta tensor (memory estimate) has no values
        if checkable and int(tokens.max()) >= self.vocab_size:
            raise ShapeError(
                f"Token id {int(tokens.max())} is outside this model's vocabulary of {self.vocab_size}; "
                "use the tokenizer that matches the model config (text_cfg.vocab_size)."
            )
        return self.clip.encode_text(tokens, normalize=normalize)

    def forward(self, pixels: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training forward (official ``DaCLIP.forward``).

        Args:
            pixels: ``(B, 3, S, S)`` preprocessed LQ images.
            tokens: ``(B, 2*context_length)``: caption ids then degradation-word ids.

        Returns:
            dict with L2-normalised ``image_features`` (content), ``text_features`` (caption),
            ``image_degra_features``, ``text_degra_features`` and ``logit_scale`` = ``exp`` of
            DA-CLIP's own scale; the keyword arguments of :class:`~.loss.DaClipLoss`.
        """
        if tokens.shape[-1] % 2:
            raise ShapeError(f"tokens must hold caption and degradation ids of equal length, "
                             f"got {tuple(tokens.shape)}.")
        caption, degradation = tokens.chunk(2, dim=-1)
        emb = self.encode_image(pixels, control=True, normalize=True)
        assert emb.degradation is not None  # control=True gives it
        return {
            "image_features": emb.content,
            "text_features": self.encode_text(caption, normalize=True),
            "image_degra_features": emb.degradation,
            "text_degra_features": self.encode_text(degradation, normalize=True),
            "logit_scale": self.logit_scale.exp(),
        }
