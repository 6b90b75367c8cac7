"""Restoration pipeline: embedding, sampling loop, pad/crop, batching and tiling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from daclip_kit.backbones.irsde_unet.arch import ConditionalUNet
from daclip_kit.backbones.irsde_unet.config import UNetConfig
from daclip_kit.checkpoint import load_strict
from daclip_kit.core.backbone import RestorationBackbone
from daclip_kit.core.embedder import EmbeddingProvider
from daclip_kit.core.pipeline import RestorationPipeline, RestoreResult
from daclip_kit.core.sampling import sample
from daclip_kit.errors import ConfigError
from daclip_kit.factory import create_sampler
from daclip_kit.ops.padding import crop_to, pad_to_multiple, padded_call
from daclip_kit.ops.tiles import tile_grid, tile_window, tiled_apply
from daclip_kit.types import Conditioning, ImageEmbedding

pytestmark = pytest.mark.usefixtures("one_thread")



class FakeEmbedder(EmbeddingProvider):
    """Content and degradation embeddings from channel statistics of the whole image."""

    embed_dim = 32
    provides_degradation = True

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.content = nn.Parameter(torch.randn(6, 32, generator=g))
        self.degradation = nn.Parameter(torch.randn(6, 32, generator=g))
        self.calls: list[tuple[int, ...]] = []

    def embed_image(self, images):
        self.calls.append(tuple(images.shape))
        stats = torch.cat([images.mean(dim=(2, 3)), images.std(dim=(2, 3))], dim=1)
        return ImageEmbedding(stats @ self.content, stats @ self.degradation)


@pytest.fixture
def unet(golden):
    g = golden("irsde_universal_unet_tiny.golden.pt")
    net = ConditionalUNet(UNetConfig(**g["config"])).eval()
    load_strict(net, g["state_dict"])
    return net


@pytest.fixture
def sde():
    return create_sampler("irsde", T=100)


def _lq(b=2, h=20, w=28, seed=0):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_pipeline_restores_non_multiple_sizes(unet, sde):
    emb = FakeEmbedder()
    pipe = RestorationPipeline(embedder=emb, denoiser=unet, sampler=sde)
    lq = _lq()
    done = []
    result = pipe(lq, steps=3, generator=torch.Generator().manual_seed(0), progress=lambda i, n: done.append((i, n)))
    assert isinstance(result, RestoreResult)
    assert result.image.shape == lq.shape
    assert float(result.image.min()) >= 0 and float(result.image.max()) <= 1
    assert result.embedding.content.shape == (2, 32) and result.embedding.degradation.shape == (2, 32)
    assert emb.calls == [(2, 3, 20, 28)]  # whole images, once
    assert done == [(1, 3), (2, 3), (3, 3)]
    again = pipe(lq, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(result.image, again.image)
    other = pipe(lq, steps=3, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(result.image, other.image)


def test_pipeline_equals_the_manual_loop(unet, sde):
    """The pipeline is embed -> sample -> clamp; check it against the pieces called by hand."""
    emb = FakeEmbedder()
    lq = _lq(1)
    sde = create_sampler("irsde", T=100, mode="sde")
    got = RestorationPipeline(embedder=emb, denoiser=unet, sampler=sde)(
        lq, steps=4, generator=torch.Generator().manual_seed(5)).image
    with torch.no_grad():
        e = emb.embed_image(lq)
        gen = torch.Generator().manual_seed(5)
        x = sde.noise_state(lq, generator=gen)
        ts = sde.steps_grid(4)
        for k, t in enumerate(ts):
            eps = padded_call(lambda a, b, t=t: unet(a, b, float(t), degradation=e.degradation, content=e.content),
                              (x, lq), unet.size_divisor)
            x = sde.step(eps, t, x, lq, generator=gen, t_prev=ts[k + 1] if k + 1 < 4 else 0).prev_sample
    torch.testing.assert_close(got, x.clamp(0, 1), atol=2e-6, rtol=0)  # the solver fuses each step (float32 rounding)


def test_engine_batches_same_size_images_and_results_do_not_depend_on_batching(unet, sde):
    """One batching layer: restore_images groups same-size images; per-image generators make every
    image's result independent of its batch and position."""
    from daclip_kit.pipelines.engine import restore_images

    emb = FakeEmbedder()
    pipe = RestorationPipeline(embedder=emb, denoiser=unet, sampler=sde)
    images = [(i, _lq(1, 20, 28, seed=i)) for i in range(3)] + [(3, _lq(1, 16, 24, seed=3))]
    done = []
    out = {r.key: r.image for r in restore_images(pipe, iter(images), options=pipe.options.__class__(steps=2),
                                                    batch_size=2, seed=7, total=4,
                                                    progress=lambda d, n: done.append((d, n)))}
    assert sorted(out) == [0, 1, 2, 3] and out[3].shape == (1, 3, 16, 24)
    assert emb.calls == [(2, 3, 20, 28), (1, 3, 20, 28), (1, 3, 16, 24)]
    assert done[-1] == (8, 8)
    emb.calls.clear()
    single = {r.key: r.image for r in restore_images(pipe, iter(images[2:3] + images[:1]),
                                                       options=pipe.options.__class__(steps=2), seed=7)}
    assert emb.calls == [(1, 3, 20, 28), (1, 3, 20, 28)]
    for key in (0, 2):
        torch.testing.assert_close(single[key], out[key], atol=2e-5, rtol=0)  # batched convs round differently


def test_one_tile_covering_the_image_equals_untiled(unet, sde):
    pipe = RestorationPipeline(embedder=FakeEmbedder(), denoiser=unet, sampler=sde)
    lq = _lq(h=32, w=48)
    whole = pipe(lq, steps=3, generator=torch.Generator().manual_seed(0)).image
    tiled = pipe(lq, steps=3, generator=torch.Generator().manual_seed(0), tile=64, tile_overlap=16).image
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=0)


def test_overlapping_tiles_of_the_unet_stay_close(unet, sde):
    """Tiles change what the U-Net sees (its receptive field is global), so tiled output is an
    approximation; docs/irsde.md states the tolerance measured here."""
    emb = FakeEmbedder()
    pipe = RestorationPipeline(embedder=emb, denoiser=unet, sampler=sde)
    lq = _lq(1, 64, 64)
    pipe.sampler = create_sampler("irsde", T=100, mode="ode")
    whole = pipe(lq, steps=2, generator=torch.Generator().manual_seed(0)).image
    tiled = pipe(lq, steps=2, generator=torch.Generator().manual_seed(0),
                 tile=48, tile_overlap=16, tile_batch=4).image
    assert emb.calls == [(1, 3, 64, 64)] * 2  # the embedding always sees the whole image
    mse = float(((tiled - whole) ** 2).mean())
    assert mse > 0  # the tiles really did differ from one whole-image call
    assert 10 * torch.log10(torch.tensor(1 / mse)) > 60  # measured ~81 dB


def test_tiling_a_local_operator_is_exact():
    conv = nn.Conv2d(3, 4, 5, padding=2)
    x = torch.rand(2, 3, 70, 53)
    seen = []

    def fn(tile):
        seen.append(tuple(tile.shape))
        return conv(tile)

    with torch.no_grad():
        whole = conv(x)
        # receptive-field radius 2 <= overlap // 4: the blend ignores every tile's padded border
        tiled = tiled_apply(fn, (x,), tile=32, overlap=12, tile_batch=3)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)
    # peak memory bound: never more than tile_batch tiles of tile x tile per image per call
    assert max(s[0] for s in seen) <= 3 * 2 and all(s[-2:] == (32, 32) for s in seen)


def test_identity_tiles_blend_back_exactly():
    x = torch.rand(1, 3, 45, 77)
    out = tiled_apply(lambda t: t * 2, (x,), tile=16, overlap=5, tile_batch=7)
    torch.testing.assert_close(out, x * 2, atol=1e-6, rtol=0)


def test_tile_grid_and_windows_cover_the_image():
    tiles = tile_grid(45, 77, 16, 8)
    cover = torch.zeros(45, 77)
    for t in tiles:
        assert (t.height, t.width) == (16, 16)
        w = tile_window(t, 45, 77, 8)
        assert float(w.min()) >= 0 and float(w.max()) == 1
        cover[t.index] += w[0, 0]
    assert float(cover.min()) > 0.5  # every pixel has weight to normalise by
    assert tile_grid(10, 12, 16, 4) == tile_grid(10, 12, 64, 4)  # one tile when it fits
    with pytest.raises(ConfigError, match="overlap"):
        tile_grid(64, 64, 16, 16)


class PaddingRecorder(RestorationBackbone):
    size_divisor = 8
    accepts = frozenset({"content"})

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.shapes: list[tuple[int, ...]] = []
        self.contexts: list[Conditioning] = []

    def forward(self, lq, cond=None):
        if lq.device.type != "meta":  # the pipeline's memory estimate traces the network on meta
            self.shapes.append(tuple(lq.shape))
            self.contexts.append(cond)
        return lq + 2.0  # out of range on purpose: the pipeline clamps


def test_one_shot_backbone_is_padded_cropped_and_clamped():
    net = PaddingRecorder()
    pipe = RestorationPipeline(embedder=FakeEmbedder(), backbone=net)
    lq = _lq(2, 21, 30)
    out = pipe(lq).image
    assert net.shapes == [(2, 3, 24, 32)]
    assert out.shape == lq.shape and torch.equal(out, torch.ones_like(lq))
    assert net.contexts[0].content.shape == (2, 32)
    tiled = pipe(_lq(1, 40, 40), tile=16, tile_overlap=4, tile_batch=2).image
    assert tiled.shape == (1, 3, 40, 40)
    assert all(s[0] <= 2 and s[-2:] == (16, 16) for s in net.shapes[1:])


def test_padding_helpers():
    x = torch.arange(20 * 28, dtype=torch.float32).view(1, 1, 20, 28)
    p = pad_to_multiple(x, 16)
    assert p.shape == (1, 1, 32, 32)
    assert torch.equal(p[..., 20, :28], x[..., 18, :])  # reflect: row 20 mirrors row 18
    assert torch.equal(crop_to(p, 20, 28), x)
    assert pad_to_multiple(x, 4) is x
    tiny = pad_to_multiple(torch.rand(1, 3, 3, 5), 16)  # pad larger than the side: replicate
    assert tiny.shape == (1, 3, 16, 16)


def test_sample_without_conditioning_and_bad_pipelines(sde):
    net = ConditionalUNet(UNetConfig(nf=32, ch_mult=(1, 1), use_degra_context=False,
                                     use_image_context=False, context_dim=0)).eval()
    with torch.no_grad():
        out = sample(net, sde, _lq(1, 12, 12), steps=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 3, 12, 12)
    with pytest.raises(ConfigError, match="sampler"):
        RestorationPipeline(denoiser=net)
    with pytest.raises(ConfigError, match="not both"):
        RestorationPipeline(denoiser=net, sampler=sde, backbone=PaddingRecorder())


def test_bfloat16_network_restores():
    import daclip_kit
    from daclip_kit.core.pipeline import RestorationPipeline

    net = daclip_kit.create_backbone("irsde-unet", nf=32, ch_mult=(1, 1, 1, 1), context_dim=32).eval()
    net = net.to(torch.bfloat16)
    sde = daclip_kit.create_sampler("irsde", T=10)
    lq = torch.rand(2, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    out = RestorationPipeline(denoiser=net, sampler=sde)(lq, steps=2, generator=torch.Generator().manual_seed(0))
    assert out.image.dtype == torch.float32 and out.image.shape == lq.shape
    assert torch.isfinite(out.image).all()


def test_reference_path_broadcasts_a_single_context():
    import daclip_kit

    net = daclip_kit.create_backbone("irsde-unet", nf=32, ch_mult=(1, 1, 1, 1), context_dim=32).eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    ctx = torch.randn(1, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fast = net(x, x, 5.0, degradation=ctx, content=ctx)
        ref = net.use_reference_ops(True)(x, x, 5.0, degradation=ctx, content=ctx)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
