"""The contract checks behind :mod:`daclip_kit.testing`.

Every check raises ``AssertionError`` naming the component and the broken rule.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..checkpoint import load_pretrained_files, load_strict, save_pretrained
from ..components import instantiate
from ..plugins import get_registry
from ..types import Conditioning

ODD_SIZES = ((37, 45), (20, 28))


def _spec_and_build(kind: str, name_or_module: Any, config: Mapping[str, Any] | None):

    if isinstance(name_or_module, str):
        spec = get_registry(kind).get(name_or_module)
        cfg = {**dict(spec.tiny_config), **dict(config or {})}

        def build():
            return instantiate(spec, cfg)

        return spec.name, build(), build
    module = name_or_module
    return type(module).__name__, module, None


def _perturb(module: torch.nn.Module, seed: int = 1, scale: float = 0.02) -> None:
    """Add ``scale * N(0,1)`` to every parameter so zero-initialised layers take part."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.is_floating_point():
                p.add_(scale * torch.randn(p.shape, generator=g).to(p))


def _pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    from ..ops.padding import pad_to_multiple

    return pad_to_multiple(x, multiple)


def _assert_finite(x: torch.Tensor, who: str, what: str) -> None:
    assert torch.isfinite(x).all(), f"{who}: {what} contains NaN or Inf"


def check_state_dict_round_trip(module: torch.nn.Module, build: Callable[[], torch.nn.Module],
                                run: Callable[[torch.nn.Module], torch.Tensor], who: str = "") -> None:
    """Save ``module`` as safetensors, load into ``build()``, and compare ``run`` outputs exactly."""

    who = who or type(module).__name__
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(module, f"{tmp}/m", {"check": who})
        _, sd = load_pretrained_files(f"{tmp}/m")
        other = build().eval()
        load_strict(other, sd, source=f"{who} round trip")
    with torch.no_grad():
        a, b = run(module), run(other)
    assert torch.equal(a, b), f"{who}: output changed after a safetensors save/load round trip"


def check_backbone_contract(name_or_module: Any, *, config: Mapping[str, Any] | None = None,
                            sizes=ODD_SIZES, context_dim: int | None = None) -> None:
    """Check a restoration backbone or denoiser.

    Rules: forward on odd sizes (padded to ``size_divisor``) keeps the shape; outputs are finite;
    the batch does not mix samples; each role in ``accepts`` changes the output and roles outside
    it do not; a safetensors round trip reproduces the output.
    """
    who, net, build = _spec_and_build("backbones", name_or_module, config)
    net = net.eval()
    _perturb(net)
    from ..core.backbone import Denoiser

    denoiser = isinstance(net, Denoiser)
    div = int(getattr(net, "size_divisor", 1))
    accepts = frozenset(getattr(net, "accepts", frozenset()))
    config_dim = getattr(getattr(net, "config", None), "context_dim", 0)
    dim = context_dim or int(getattr(net, "context_dim", 0) or config_dim or 0) or 32
    g = torch.Generator().manual_seed(0)

    def run(m, lq, cond: Conditioning):
        h, w = lq.shape[-2:]
        lq_p = _pad(lq, div)
        if denoiser:
            # a fixed, sample-wise deterministic noisy state (slicing the batch keeps it the same)
            x_t = _pad(lq + 0.1 * torch.sin(lq * 50.0), div)
            out = m(x_t, lq_p, 10, degradation=cond.degradation, content=cond.content)
        else:
            out = m(lq_p, cond)
        return out[..., :h, :w]

    for h, w in sizes:
        lq = torch.rand(2, 3, h, w, generator=g)
        full = Conditioning(degradation=torch.randn(2, dim, generator=g), content=torch.randn(2, dim, generator=g))
        cond = Conditioning(**{r: getattr(full, r) for r in accepts if r in ("degradation", "content")})
        with torch.no_grad():
            out = run(net, lq, cond)
            assert out.shape == lq.shape, f"{who}: output {tuple(out.shape)} for input {tuple(lq.shape)}"
            assert out.dtype == lq.dtype, f"{who}: output dtype {out.dtype} != input dtype {lq.dtype}"
            _assert_finite(out, who, "output")
            single = run(net, lq[:1], Conditioning(**{k: v[:1] for k, v in cond.__dict__.items() if v is not None}))
            assert torch.allclose(out[:1], single, atol=1e-4, rtol=1e-4), f"{who}: batch elements interact"
            for role in ("degradation", "content"):
                other = torch.randn(2, dim, generator=g)
                changed = Conditioning(**{**{k: v for k, v in cond.__dict__.items() if v is not None}, role: other})
                diff = (run(net, lq, changed) - out).abs().max().item()
                if role in accepts:
                    assert diff > 1e-6, f"{who}: accepts {role!r} but ignores it"
                else:
                    assert diff == 0, f"{who}: does not accept {role!r} but its output changed"
    if build is not None:
        lq = torch.rand(1, 3, *sizes[0], generator=g)
        cond = Conditioning(**{r: torch.randn(1, dim, generator=g) for r in accepts if r in ("degradation", "content")})
        check_state_dict_round_trip(net, build, lambda m: run(m, lq, cond), who)


def check_embedder_contract(name_or_module: Any, *, config: Mapping[str, Any] | None = None,
                            sizes=ODD_SIZES) -> None:
    """Check an embedding provider: any-size [0,1] images in, ``(B, D)`` finite embeddings out,
    text embeddings of matching width, classification probabilities that sum to one."""
    who, emb, _ = _spec_and_build("embedders", name_or_module, config)
    emb = emb.eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for h, w in sizes:
            images = torch.rand(2, 3, h, w, generator=g)
            e = emb.embed_image(images)
            assert e.content.ndim == 2 and e.content.shape[0] == 2, f"{who}: content shape {tuple(e.content.shape)}"
            _assert_finite(e.content, who, "content embedding")
            if e.degradation is not None:
                assert e.degradation.shape == e.content.shape, f"{who}: degradation/content shapes differ"
                _assert_finite(e.degradation, who, "degradation embedding")
            assert bool(getattr(emb, "provides_degradation", False)) == (e.degradation is not None), (
                f"{who}: provides_degradation does not match embed_image"
            )
            again = emb.embed_image(images)
            assert torch.equal(again.content, e.content), f"{who}: embed_image is not deterministic"
        text = emb.embed_text(["noisy", "a photo of a cat"])
        assert text.shape == (2, e.content.shape[1]), f"{who}: text embedding shape {tuple(text.shape)}"
        probs = emb.classify(images, ["noisy", "hazy", "rainy"]).probs
        assert probs.shape == (2, 3), f"{who}: classify gave shape {tuple(probs.shape)}"
        assert torch.allclose(probs.sum(-1), torch.ones(2), atol=1e-5), f"{who}: probabilities do not sum to 1"


def check_adapter_contract(name_or_module: Any, *, config: Mapping[str, Any] | None = None) -> None:
    """Check a conditioning adapter: shape kept, identity without its signal, signal used."""
    who, ad, build = _spec_and_build("adapters", name_or_module, config)
    ad = ad.eval()
    dim = ad.config.dim
    ctx = ad.config.context_dim
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, dim, 5, 7, generator=g)
    cond = Conditioning(**{ad.role: torch.randn(2, ctx, generator=g)})
    with torch.no_grad():
        assert torch.equal(ad(x, None), x), f"{who}: without conditioning the features must pass unchanged"
        assert torch.equal(ad(x, Conditioning()), x), f"{who}: an empty Conditioning must leave features unchanged"
        _perturb(ad)
        out = ad(x, cond)
        assert out.shape == x.shape, f"{who}: output {tuple(out.shape)} for features {tuple(x.shape)}"
        _assert_finite(out, who, "output")
        other = Conditioning(**{ad.role: torch.randn(2, ctx, generator=g)})
        assert not torch.allclose(ad(x, other), out), f"{who}: the {ad.role!r} signal has no effect"
    if build is not None:
        check_state_dict_round_trip(ad, build, lambda m: m(x, cond), who)


def check_sampler_contract(name_or_module: Any, *, config: Mapping[str, Any] | None = None) -> None:
    """Check a sampler: deterministic start state given a generator, decreasing timesteps,
    shape-preserving steps, no stored model."""
    who, sampler, _ = _spec_and_build("samplers", name_or_module, config)
    lq = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a = sampler.noise_state(lq, generator=torch.Generator().manual_seed(5))
    b = sampler.noise_state(lq, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b), f"{who}: noise_state is not deterministic for a fixed generator"
    steps = list(sampler.timesteps())
    assert steps == sorted(steps, reverse=True), f"{who}: timesteps must run from high to low"
    out = sampler.step(torch.zeros_like(lq), steps[0], a, lq, generator=torch.Generator().manual_seed(1))
    assert out.prev_sample.shape == lq.shape, f"{who}: step changed the shape"
    _assert_finite(out.prev_sample, who, "prev_sample")
    assert not any(isinstance(v, torch.nn.Module) for v in vars(sampler).values()), (
        f"{who}: a sampler must not hold a model"
    )


def check_degradation_contract(name_or_module: Any, *, config: Mapping[str, Any] | None = None) -> None:
    """Check a degradation: ``(B,3,H,W)`` in [0,1] out, same shape, deterministic per generator,
    and the image actually changed."""
    who, deg, _ = _spec_and_build("degradations", name_or_module, config)
    x = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    a = deg(x, generator=torch.Generator().manual_seed(7))
    b = deg(x, generator=torch.Generator().manual_seed(7))
    assert a.shape == x.shape, f"{who}: output {tuple(a.shape)} for input {tuple(x.shape)}"
    assert torch.equal(a, b), f"{who}: not deterministic for a fixed generator"
    assert a.min() >= 0 and a.max() <= 1, f"{who}: output leaves [0, 1]"
    assert not torch.equal(a, x), f"{who}: the image was not changed"
