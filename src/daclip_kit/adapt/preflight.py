"""Preflight of ``daclip-kit adapt``: measure the user's (LQ, GT) pairs, then choose how to train.

A noise-predicting IR-SDE U-Net continued on a degradation that is mostly a global colour/tone
change barely learns it (tiny models, strong colour cast + JPEG: +0.04 dB), while a
clean-predicting U-Net trained anew learns it quickly (+10.6 dB); for noise-like or local
artefacts the released noise-predicting model is the better start. The two folders tell which
case it is, before any training.

Measurements (per pair, on a central crop of at most ``crop`` px at full resolution, so that noise,
blur and JPEG blocks keep the scale training sees; the crop starts on the 8 px JPEG grid):

* ``shift`` ``(dy, dx)``: the integer displacement of LQ relative to GT, ``lq[y, x] ~ gt[y - dy,
  x - dx]``, from phase correlation of the luminance (Hann window, correlation smoothed by 1 px),
  searched within ``max_shift`` px and kept only when it lowers the luminance residual by 10 %.
  A pair shifted by more than 1 px is *misaligned*: pixel losses then learn a blur. The other
  measurements use the aligned overlap.
* ``psnr``: PSNR of LQ against GT (unaligned, as a pixel loss sees them), in dB.
* ``global_share``: the share of the residual energy ``sum (lq - gt)^2`` that one smooth global
  colour map explains: ``lq ~ g(gt)`` per pixel, with ``g`` a polynomial of the GT colour (per
  channel up to cubic, cross-channel up to quadratic: 13 terms per output channel, least squares,
  so it covers a 3x3 colour matrix + bias, gamma/tone curves and channel mixing). ``g`` is fitted
  from the clean GT to LQ (the direction of the degradation) on the means of 8x8 blocks (4x4
  under 128 px, 2x2 under 64 px), then measured on the pixels: fitted on the noisy LQ's colours it
  would shrink towards the mean and "explain" part of the noise, fitted on pixels it would explain
  a blur's loss of contrast as a tone change; block means are hardly changed by either. Clipping
  counts as global where it shifts the mean (noise clipped at black). ``affine_share`` is the
  same for the 3x3 matrix + bias alone; ``psnr_mapped`` the PSNR of LQ against the mapped GT
  (how close the degradation is to a colour map alone). The analysis also fits one map to all
  pairs together (``pooled_global_share``): close to the per-pair median when one map fits every
  image, lower when the cast varies from image to image.
* ``smooth_share`` / ``local_share``: the rest of the residual, ``lq - g(gt)``, split into its
  spatially smooth part (Gaussian low-pass, sigma 4 px: haze, vignetting, uneven light) and its
  local part (edges, texture, noise, blocks). The three shares add up to 1.
* ``noise_lq`` / ``noise_gt``: the noise level of each image (Donoho: median absolute value of
  the finest diagonal Haar coefficients / 0.6745, median over the channels, in [0, 1] units);
  ``noise_added = sqrt(max(noise_lq^2 - noise_gt^2, 0))`` is the noise the degradation adds.
  Texture counts as a little noise, so clean photos read about 0.003-0.02.
* ``hf_ratio``: how much fine detail LQ keeps: the energy of LQ's detail band (difference of
  Gaussian low-passes of sigma 0.7 and 2 px of the luminance), the part its added noise puts there
  subtracted, over GT's, divided by the same ratio of a coarser band (sigma 2 to 6 px), so a
  global gain cancels. About 1: as sharp as GT (noise, colour casts); below 0.5: blur-like (a
  Gaussian blur of sigma 1 px reads about 0.5, of 2 px about 0.2). Noise and noise sigmas are
  measured where LQ is not clipped at 0 or 1, which would hide noise.
* ``blockiness``: the mean luminance step across the 8 px JPEG grid over the mean step elsewhere,
  LQ's over GT's. About 1: no blocks; above 1.3: compression blocks.

The :class:`Analysis` holds every pair's :class:`PairStats`, their medians (PSNRs: means) and its
*traits*: ``global-colour`` (``global_share >= 0.5``), ``smooth-spatial`` (``global_share +
smooth_share >= 0.6`` without the former), ``noise`` (``noise_added >= 0.02``, about 5/255, and
``noise_lq >= 1.5 noise_gt``), ``blur`` (``hf_ratio < 0.5``), ``blocking`` (``blockiness >=
1.3``), ``local-other`` (local, none of the three before) and ``misaligned`` (any pair shifted
by more than 1 px).

Decisions (:func:`decide`; rules of thumb to be refined by measurement; every one can be set by
the caller, which the reasons then say):

* ``objective``: ``clean`` when the difference is mostly low-frequency (``global-colour`` or
  ``smooth-spatial``): the LQ image is then far from its GT everywhere and a noise prediction's
  errors are amplified about 40x at the start of the reverse process (docs/train.md); else
  ``noise``, as the released model.
* ``init``: ``continue`` the given model when it predicts what the objective trains, else ``anew``
  (a fresh network of the same architecture). A new output head is not offered: the IR-SDE's clean
  estimate is an affine function of ``x_t``, the LQ image and the predicted noise, so a new head on
  the noise-trained body would start from the same features that did not learn the change.
* ``lr``: ``base_lr`` (2e-4, the official from-scratch rate) anew; continuing: ``base_lr / 4``
  (5e-5, ``irsde_finetune``) for degradations close to ones the model knows (noise, blur,
  blocking), ``base_lr / 2`` for other local artefacts, further from them.
* ``new_share`` (``data.new_share``: share of each batch from the new degradation, the rest
  replays the known ones): 0.5 continuing, so the known ones are not forgotten; 0.9 anew
  (:data:`ANEW_NEW_SHARE`): a fresh network has everything to learn in few steps, and every batch,
  the new degradation's too, teaches it to remove the sampler's own noise, which is most of what a
  denoising degradation needs; a tenth of replay keeps the known ones (``adapt`` writes one model
  for all degradations and checks that none was lost). Measured (tiny stand-ins, global cast, 800
  steps, docs/your-data.md): replay 0.5 gave +3.3 dB on the cast with ``noisy`` kept; 0.25 +3.9 dB,
  ``noisy`` kept; 0.1 +5.5 dB (SSIM kept), ``noisy`` -0.8 dB. 1.0 (set by hand) trains on the new
  pairs alone: a specialist.
* ``daclip_steps_ratio`` (DA-CLIP's fine-tuning steps / the restorer's): 1/15, as the
  ``daclip_finetune`` and ``irsde_finetune`` recipes (2,000 / 30,000); 2/15 when the new
  degradation resembles a known one (noise, blur, blocking), so that DA-CLIP learns to tell them
  apart.

Warnings: misaligned pairs (align them, e.g. crop LQ by the shift, before training), fewer than 20
pairs (expect over-fitting; hold some out), LQ and GT nearly identical (PSNR above 50 dB).

Example::

    analysis, plan = preflight("my/lq", "my/gt", overrides={"lr": 1e-4})
    print("\\n".join(report_lines(analysis, plan)))
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DaclipKitError, InputError, suggest

if TYPE_CHECKING:
    import torch

__all__ = [
    "Analysis", "PairStats", "Plan",
    "analyse_pair", "analyse_pairs", "analyse_folders", "decide", "report_lines", "preflight",
    "OBJECTIVES", "INITS", "OVERRIDABLE", "ANEW_NEW_SHARE", "CONTINUE_NEW_SHARE",
]

#: Default side of the analysed central crop (full resolution), in pixels.
CROP = 256
#: Smallest image side that can be analysed, in pixels.
MIN_SIDE = 32
#: Default largest shift searched by the alignment, in pixels.
MAX_SHIFT = 16

# Thresholds of the traits (module docstring).
GLOBAL_SHARE_MIN = 0.5
LOWFREQ_SHARE_MIN = 0.6
NOISE_ADDED_MIN = 0.02
NOISE_RATIO_MIN = 1.5
BLUR_HF_RATIO_MAX = 0.5
BLOCKINESS_MIN = 1.3
SHIFT_WARN_PX = 1
FEW_PAIRS = 20
IDENTICAL_PSNR = 50.0
#: PSNR reported for identical images (keeps the JSON finite).
PSNR_CAP = 99.0

#: Allowed values of the choices.
OBJECTIVES = ("noise", "clean")
INITS = ("continue", "anew")
#: Choices :func:`decide` accepts in ``overrides``.
OVERRIDABLE = ("objective", "init", "lr", "new_share", "daclip_steps_ratio")
#: The official from-scratch learning rate of the IR-SDE U-Net (irsde_official).
BASE_LR = 2e-4
#: DA-CLIP steps / restorer steps of the fine-tuning recipes (2,000 / 30,000).
DACLIP_STEPS_RATIO = 2000 / 30000
#: ``new_share`` continuing the given network (half of each batch replays the known degradations).
CONTINUE_NEW_SHARE = 0.5
#: ``new_share`` of a fresh network (module docstring: a tenth of each batch replays the known ones).
ANEW_NEW_SHARE = 0.9

_SMOOTH_SIGMA = 4.0
#: The detail band of ``hf_ratio`` lies between Gaussian low-passes of these sigmas (px), its
#: reference band between the last two: fine enough to see blur, coarse enough that white noise
#: puts little energy in it (the finest band would be mostly noise in a noisy LQ).
_BAND_SIGMAS = (0.7, 2.0, 6.0)
_MAD = 0.6745


# ----------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class PairStats:
    """The measurements of one (LQ, GT) pair (module docstring); values in [0, 1] units, PSNRs in dB.

    Attributes:
        name: the pair's stem (or its index).
        size: ``(H, W)`` of the images; ``crop``: ``(h, w)`` of the analysed region.
        shift: ``(dy, dx)`` with ``lq[y, x] ~ gt[y - dy, x - dx]``.
    """

    name: str
    size: tuple[int, int]
    crop: tuple[int, int]
    shift: tuple[int, int]
    psnr: float
    psnr_mapped: float
    global_share: float
    affine_share: float
    smooth_share: float
    local_share: float
    noise_lq: float
    noise_gt: float
    noise_added: float
    hf_ratio: float
    blockiness: float

    @property
    def misaligned(self) -> bool:
        """Shifted by more than :data:`SHIFT_WARN_PX` pixels along an axis."""
        return max(abs(self.shift[0]), abs(self.shift[1])) > SHIFT_WARN_PX

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


@dataclass(frozen=True)
class Analysis:
    """What the pairs show (module docstring): medians over the pairs (PSNRs: means), the pooled
    colour-map fit, traits and warnings.

    Attributes:
        n_pairs: pairs analysed (``pairs`` holds each one's :class:`PairStats`).
        traits: names among ``global-colour``, ``smooth-spatial``, ``noise``, ``blur``,
            ``blocking``, ``local-other``, ``misaligned``.
        misaligned: names of the pairs shifted by more than 1 px.
        skipped: one line per pair left out (``skip_bad``).
        warnings: one line each (misalignment, few pairs, identical images).
    """

    n_pairs: int
    psnr: float
    psnr_mapped: float
    global_share: float
    pooled_global_share: float
    pooled_affine_share: float
    affine_share: float
    smooth_share: float
    local_share: float
    noise_lq: float
    noise_gt: float
    noise_added: float
    hf_ratio: float
    blockiness: float
    traits: tuple[str, ...]
    misaligned: tuple[str, ...]
    warnings: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    pairs: tuple[PairStats, ...] = field(default=(), repr=False)

    @property
    def lowfreq_share(self) -> float:
        """``global_share + smooth_share``: the spatially smooth part of the difference."""
        return self.global_share + self.smooth_share

    def to_dict(self, *, pairs: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "pairs":
                if pairs:
                    out["pairs"] = [p.to_dict() for p in value]
            else:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class Plan:
    """How to adapt the restorer (and DA-CLIP) to the pairs; each choice with its reason.

    Attributes:
        objective: ``"noise"`` (the network predicts the noise, as the released one) or
            ``"clean"`` (it predicts the clean image; ``network.prediction = "clean"``).
        init: ``"continue"`` the given model, or ``"anew"``: a fresh network of its architecture.
        lr: the restorer's peak learning rate.
        new_share: ``data.new_share``, the share of each batch from the new degradation, in
            (0, 1]; 1.0 trains on the new pairs alone (the known degradations are not replayed).
        daclip_steps_ratio: DA-CLIP's fine-tuning steps relative to the restorer's (>= 0).
        reasons: one line per choice, ``"name: why"``, in the order above.
        warnings: the analysis's warnings.
        overridden: the choices the caller set.
    """

    objective: str
    init: str
    lr: float
    new_share: float
    daclip_steps_ratio: float
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    overridden: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"objective": self.objective, "init": self.init, "lr": self.lr, "new_share": self.new_share,
                "daclip_steps_ratio": self.daclip_steps_ratio, "reasons": list(self.reasons),
                "warnings": list(self.warnings), "overridden": list(self.overridden)}


# ----------------------------------------------------------------------------------------------
# image helpers (numpy, float64, channels first)


def _as_chw(image: Any, side: str, name: str) -> np.ndarray:
    """``(3, H, W)`` float64 in [0, 1] from a ``(1, 3, H, W)`` / ``(3, H, W)`` tensor or array."""
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise InputError(f"pair {name}: the {side} image has shape {tuple(arr.shape)}; expected (1, 3, H, W) or "
                         "(3, H, W) RGB in [0, 1] (daclip_kit.io.read_image gives that).")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"pair {name}: the {side} image holds NaN or infinite values; read it with "
                         "daclip_kit.io.read_image.")
    return np.clip(arr, 0.0, 1.0)


def _luma(x: np.ndarray) -> np.ndarray:
    return 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]


def _fast_len(n: int) -> int:
    """The smallest length >= ``n`` whose only prime factors are 2, 3 and 5 (fast FFTs)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _lowpass(x: np.ndarray, *sigmas: float) -> list[np.ndarray]:
    """Gaussian low-passes of ``x`` (``(H, W)`` or ``(C, H, W)``), one per sigma (pixels), with
    reflected borders; by one FFT of the padded image."""
    pad = max(1, math.ceil(3 * max(sigmas)))
    h, w = x.shape[-2:]
    pad_y, pad_x = min(pad, h - 1), min(pad, w - 1)
    widths = [(0, 0)] * (x.ndim - 2) + [(pad_y, pad_y), (pad_x, pad_x)]
    padded = np.pad(x, widths, mode="reflect")
    shape = (_fast_len(padded.shape[-2]), _fast_len(padded.shape[-1]))  # zeros beyond the reflection
    spectrum = np.fft.rfft2(padded, s=shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f2 = fy ** 2 + fx ** 2
    out = []
    for sigma in sigmas:
        smooth = np.fft.irfft2(spectrum * np.exp(-2 * math.pi ** 2 * sigma ** 2 * f2), s=shape)
        out.append(smooth[..., pad_y:pad_y + h, pad_x:pad_x + w])
    return out


def _haar_hh(x: np.ndarray) -> np.ndarray:
    """The finest diagonal Haar coefficients of ``x`` ``(H, W)`` (orthonormal: white noise of sigma
    gives coefficients of std sigma), ``(H // 2, W // 2)``."""
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2


def _noise_sigma(x: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Donoho's estimate of the white-noise sigma of ``x`` ``(H, W)``: median absolute finest
    diagonal Haar coefficient / 0.6745, over the 2x2 blocks where ``mask`` (``(H, W)``) holds."""
    hh = np.abs(_haar_hh(x))
    if mask is not None:
        hh = hh[mask[0:hh.shape[0] * 2:2, 0:hh.shape[1] * 2:2]]
    return float(np.median(hh) / _MAD) if hh.size else 0.0


def _unclipped(lq: np.ndarray) -> np.ndarray:
    """``(H, W)`` mask of where LQ ``(3, H, W)`` is not near 0 or 1 in any channel, so that clipping
    does not hide noise there: its local mean (Gaussian, sigma 2 px) more than 2.5 noise sigmas
    inside, or 2, 1.5, 1, 0.5 sigmas where that leaves fewer than 2,048 pixels (or a quarter of
    them); every pixel when none does."""
    sigma = max(_noise_sigma(c) for c in lq)
    (mean,) = _lowpass(lq, 2.0)
    enough = min(2048, mean[0].size // 4)
    for k in (2.5, 2.0, 1.5, 1.0, 0.5):
        margin = k * sigma
        mask = np.all((mean > margin) & (mean < 1 - margin), axis=0)
        if mask.sum() >= enough:
            return mask
    return np.ones(mean.shape[1:], dtype=bool)


@functools.lru_cache(maxsize=1)
def _band_gains() -> tuple[float, float]:
    """Energy gains (sum of squared taps) of the detail and reference bands for white noise."""
    n = 96
    delta = np.zeros((n, n))
    delta[n // 2, n // 2] = 1.0
    g1, g3, g8 = _lowpass(delta, *_BAND_SIGMAS)
    return float(((g1 - g3) ** 2).sum()), float(((g3 - g8) ** 2).sum())


def _bands(y: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Mean energies of the detail and the reference band of ``y`` ``(H, W)`` where ``mask`` holds."""
    g1, g3, g8 = _lowpass(y, *_BAND_SIGMAS)
    return float(np.mean(((g1 - g3) ** 2)[mask])), float(np.mean(((g3 - g8) ** 2)[mask]))


def _step_ratio(y: np.ndarray) -> float:
    """Mean absolute luminance step across the 8 px grid over the mean step elsewhere (both axes)."""
    ratios = []
    for d in (np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0)).T):
        on = (np.arange(d.shape[1]) + 1) % 8 == 0
        if on.sum() == 0 or (~on).sum() == 0:
            continue
        ratios.append(float(d[:, on].mean()) / max(float(d[:, ~on].mean()), 1e-8))
    return float(np.mean(ratios)) if ratios else 1.0


def _psnr(mse: float) -> float:
    return PSNR_CAP if mse <= 10 ** (-PSNR_CAP / 10) else min(PSNR_CAP, -10 * math.log10(mse))


def _share(explained_from: float, left: float) -> float:
    """``1 - left / explained_from`` clipped to [0, 1]; 0 when there is nothing to explain."""
    if explained_from <= 1e-12:
        return 0.0
    return float(min(1.0, max(0.0, 1.0 - left / explained_from)))


# ----------------------------------------------------------------------------------------------
# alignment


def _estimate_shift(a: np.ndarray, b: np.ndarray, max_shift: int) -> tuple[int, int]:
    """Integer ``(dy, dx)`` with ``a[y, x] ~ b[y - dy, x - dx]`` (luminances), or ``(0, 0)``."""
    h, w = a.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    fa = np.fft.fft2((a - a.mean()) * win)
    fb = np.fft.fft2((b - b.mean()) * win)
    cross = fa * np.conj(fb)
    cross /= np.abs(cross) + 1e-12
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    cross *= np.exp(-2 * math.pi ** 2 * (fy ** 2 + fx ** 2))  # smooth the surface by 1 px
    surface = np.real(np.fft.ifft2(cross))
    m = max(0, min(max_shift, h // 4, w // 4))
    dys, dxs = np.arange(-m, m + 1), np.arange(-m, m + 1)
    window = surface[np.ix_(dys % h, dxs % w)]
    iy, ix = np.unravel_index(int(np.argmax(window)), window.shape)
    dy, dx = int(dys[iy]), int(dxs[ix])
    if (dy, dx) == (0, 0):
        return 0, 0
    # keep the shift only when it clearly lowers the residual of LQ's overlap region regressed on
    # GT's matching region, against the same LQ region on GT's unshifted one (LQ as the target:
    # its noise adds the same to both, whatever the content)
    region, matched = _overlap(a, b, dy, dx)
    h0, w0 = region.shape
    y0, x0 = max(dy, 0), max(dx, 0)
    if _residual(region, matched) < 0.9 * _residual(region, b[y0:y0 + h0, x0:x0 + w0]):
        return dy, dx
    return 0, 0


def _overlap(a: np.ndarray, b: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """The regions of ``a`` and ``b`` (``(..., H, W)``) that match under the shift ``(dy, dx)``."""
    h, w = a.shape[-2:]
    y0, y1, x0, x1 = max(dy, 0), h + min(dy, 0), max(dx, 0), w + min(dx, 0)
    return a[..., y0:y1, x0:x1], b[..., y0 - dy:y1 - dy, x0 - dx:x1 - dx]


def _residual(target: np.ndarray, source: np.ndarray) -> float:
    """Mean squared residual of ``target`` regressed on ``source`` (gain and offset)."""
    design = np.stack([source.ravel(), np.ones(source.size)], 1)
    coef, *_ = np.linalg.lstsq(design, target.ravel(), rcond=None)
    return float(np.mean((design @ coef - target.ravel()) ** 2))


# ----------------------------------------------------------------------------------------------
# the global colour map

_N_FEATURES = 13


def _features(x: np.ndarray) -> np.ndarray:
    """``(N, 13)`` polynomial features of ``(3, N)`` colours: 1, c, c^2 (c per channel, centred),
    the three cross products and c^3."""
    c = x - 0.5
    out = np.empty((_N_FEATURES, c.shape[1]))  # rows filled contiguously, returned transposed
    out[0] = 1.0
    out[1:4] = c
    np.square(c, out=out[4:7])
    np.multiply(c[0], c[1], out=out[7])
    np.multiply(c[0], c[2], out=out[8])
    np.multiply(c[1], c[2], out=out[9])
    np.multiply(out[4:7], c, out=out[10:13])
    return out.T


_AFFINE = 4  # the first 4 features: 1, r, g, b


#: The map is fitted on means of blocks of this side (4 or 2 in images under 16 blocks), where
#: noise and blur hardly change LQ; it is then measured on the pixels.
_FIT_BLOCK = 8


@dataclass
class _Moments:
    """Sums over pixels for the colour-map fit ``lq ~ g(gt)``: normal equations of the block
    means (``fit_*``), the same of the pixels (``gram``, ``cross``, with ``target = sum lq^2``:
    any map's residual energy on the pixels follows from the three), and the unmapped residual
    energy ``raw = sum (lq - gt)^2``."""

    fit_gram: np.ndarray  # (13, 13)
    fit_cross: np.ndarray  # (13, 3)
    gram: np.ndarray  # (13, 13)
    cross: np.ndarray  # (13, 3)
    target: float
    raw: float

    def __iadd__(self, other: _Moments) -> _Moments:
        self.fit_gram += other.fit_gram
        self.fit_cross += other.fit_cross
        self.gram += other.gram
        self.cross += other.cross
        self.target += other.target
        self.raw += other.raw
        return self

    def coef(self, k: int = _N_FEATURES) -> np.ndarray:
        """``(k, 3)`` least-squares map on the first ``k`` features, fitted on the block means (a
        tiny ridge for flat images)."""
        gram = self.fit_gram[:k, :k]
        ridge = 1e-9 * max(float(np.trace(gram)), 1e-12) / k
        return np.linalg.solve(gram + ridge * np.eye(k), self.fit_cross[:k])

    def sse(self, k: int = _N_FEATURES) -> float:
        """Residual energy ``sum (lq - g(gt))^2`` over the pixels of the map on ``k`` features."""
        coef, gram, cross = self.coef(k), self.gram[:k, :k], self.cross[:k]
        return max(0.0, self.target - 2 * float(np.sum(coef * cross)) + float(np.sum(coef * (gram @ coef))))


def _block_means(x: np.ndarray, block: int) -> np.ndarray:
    """``(C, H // block * W // block)`` means of ``block`` x ``block`` tiles of ``(C, H, W)``."""
    c, h, w = x.shape
    h, w = h // block * block, w // block * block
    return x[:, :h, :w].reshape(c, h // block, block, w // block, block).mean(axis=(2, 4)).reshape(c, -1)


def _moments(lq: np.ndarray, gt: np.ndarray) -> tuple[_Moments, np.ndarray]:
    """The pair's colour-map moments and the GT pixels' features ``(H*W, 13)``."""
    block = next((b for b in (_FIT_BLOCK, 4, 2) if min(lq.shape[1:]) >= 16 * b), 1)
    fit_feats = _features(_block_means(gt, block))
    fit_target = _block_means(lq, block).T
    feats = _features(gt.reshape(3, -1))
    target = lq.reshape(3, -1).T
    scale = block * block  # a block mean stands for as many pixels
    m = _Moments(fit_gram=scale * fit_feats.T @ fit_feats, fit_cross=scale * fit_feats.T @ fit_target,
                 gram=feats.T @ feats, cross=feats.T @ target, target=float(np.sum(target ** 2)),
                 raw=float(np.sum((lq - gt) ** 2)))
    return m, feats


# ----------------------------------------------------------------------------------------------
# analysis


def _central_crop(x: np.ndarray, crop: int) -> np.ndarray:
    _, h, w = x.shape
    ch, cw = min(h, crop), min(w, crop)
    y0, x0 = ((h - ch) // 2) // 8 * 8, ((w - cw) // 2) // 8 * 8
    return x[:, y0:y0 + ch, x0:x0 + cw]


def _analyse(lq_image: Any, gt_image: Any, name: str, crop: int, max_shift: int) -> tuple[PairStats, _Moments]:
    lq, gt = _as_chw(lq_image, "LQ", name), _as_chw(gt_image, "GT", name)
    if lq.shape != gt.shape:
        (h1, w1), (h2, w2) = lq.shape[1:], gt.shape[1:]
        raise InputError(f"pair {name}: LQ is {w1}x{h1} but GT is {w2}x{h2}; paired images must have the same size "
                         "(resize or crop one to the other; for super-resolution, upscale LQ to the GT size first).")
    size = (int(lq.shape[1]), int(lq.shape[2]))
    if min(size) < MIN_SIDE:
        raise InputError(f"pair {name}: the images are {size[1]}x{size[0]}; the preflight needs at least "
                         f"{MIN_SIDE} px on each side (leave out or enlarge the smallest pairs).")
    crop = max(int(crop), MIN_SIDE)
    lq, gt = _central_crop(lq, crop), _central_crop(gt, crop)
    diff = lq - gt
    psnr = _psnr(float(np.mean(diff ** 2)))
    blockiness = _step_ratio(_luma(lq)) / max(_step_ratio(_luma(gt)), 1e-8)

    shift = _estimate_shift(_luma(lq), _luma(gt), max_shift)
    lq, gt = _overlap(lq, gt, *shift)
    _, h, w = lq.shape

    # global colour map of the degradation: lq ~ g(gt), fitted from the clean GT's colours to LQ's
    # on block means (noise averaged out, blur hardly changes them), measured on the pixels
    moments, feats = _moments(lq, gt)
    residual = lq - (feats @ moments.coef()).T.reshape(3, h, w)
    e_raw = moments.raw
    e_map = float(np.sum(residual ** 2))
    if e_map > e_raw:  # the map fitted on block means does worse on the pixels than none
        residual, e_map = lq - gt, e_raw
    if e_raw / residual.size < 1e-10:  # LQ equals GT where they overlap: nothing to split
        global_share = affine_share = 0.0
        residual = np.zeros_like(residual)
    else:
        global_share = _share(e_raw, e_map)
        affine_share = _share(e_raw, moments.sse(_AFFINE))

    (smooth,) = _lowpass(residual, _SMOOTH_SIGMA)
    e_smooth, e_local = float(np.sum(smooth ** 2)), float(np.sum((residual - smooth) ** 2))
    rest = 1.0 - global_share if e_smooth + e_local > 0 else 0.0
    smooth_share = rest * e_smooth / (e_smooth + e_local) if e_smooth + e_local > 0 else 0.0

    # noise sigmas (median over the channels) where LQ is not clipped at 0 or 1, which hides noise
    mask = _unclipped(lq)
    noise_lq = float(np.median([_noise_sigma(c, mask) for c in lq]))
    noise_gt = float(np.median([_noise_sigma(c, mask) for c in gt]))
    noise_added = math.sqrt(max(noise_lq ** 2 - noise_gt ** 2, 0.0))

    # sharpness: detail band over reference band, LQ relative to GT, LQ's added noise removed
    gains = _band_gains()
    y_lq, y_gt = _luma(lq), _luma(gt)
    detail_lq, reference_lq = _bands(y_lq, mask)
    detail_gt, reference_gt = _bands(y_gt, mask)
    excess = max(_noise_sigma(y_lq, mask) ** 2 - _noise_sigma(y_gt, mask) ** 2, 0.0)
    detail_lq = max(detail_lq - gains[0] * excess, 0.0)
    reference_lq = max(reference_lq - gains[1] * excess, 1e-12)
    if detail_gt > 1e-10 and reference_gt > 1e-10:
        hf_ratio = (detail_lq / detail_gt) / (reference_lq / reference_gt)
    else:  # a flat GT: nothing to compare
        hf_ratio = 1.0

    stats = PairStats(
        name=name, size=size, crop=(int(h), int(w)), shift=shift, psnr=round(psnr, 3),
        psnr_mapped=round(_psnr(e_map / residual.size), 3), global_share=round(global_share, 4),
        affine_share=round(affine_share, 4), smooth_share=round(smooth_share, 4),
        local_share=round(max(0.0, rest - smooth_share), 4), noise_lq=round(noise_lq, 5),
        noise_gt=round(noise_gt, 5), noise_added=round(noise_added, 5), hf_ratio=round(float(hf_ratio), 4),
        blockiness=round(float(blockiness), 4))
    return stats, moments


def analyse_pair(lq: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray, *, name: str = "0",
                 crop: int = CROP, max_shift: int = MAX_SHIFT) -> PairStats:
    """Measure one pair (module docstring).

    Args:
        lq: ``(1, 3, H, W)`` (as :func:`daclip_kit.io.read_image` gives) or ``(3, H, W)`` float
            RGB in [0, 1], at least 32 px each side.
        gt: the same for the clean image, of the same size.
        name: the pair's name in messages.
        crop: side of the analysed central crop (full resolution).
        max_shift: largest misalignment searched, in pixels.

    Raises:
        InputError: sizes differ, an image is too small, of another shape, or not finite.
    """
    return _analyse(lq, gt, name, crop, max_shift)[0]


def _median(values: Sequence[float]) -> float:
    return round(float(np.median(values)), 5) if values else 0.0


def analyse_pairs(pairs: Iterable[tuple[Any, Any]] | Iterable[tuple[str, Any, Any]], *,
                  crop: int = CROP, max_shift: int = MAX_SHIFT, skipped: Sequence[str] = ()) -> Analysis:
    """Measure every pair and summarise them (module docstring).

    Args:
        pairs: ``(lq, gt)`` or ``(name, lq, gt)`` items, images as in :func:`analyse_pair`;
            consumed one at a time (an iterator that reads files keeps one pair in memory).
        crop: as in :func:`analyse_pair`.
        max_shift: as in :func:`analyse_pair`.
        skipped: lines on pairs the caller left out, kept in the analysis.

    Raises:
        InputError: no pairs, or a pair :func:`analyse_pair` refuses.
    """
    stats: list[PairStats] = []
    pooled: _Moments | None = None
    for i, item in enumerate(pairs):
        if len(item) == 3:
            name, lq, gt = item
        else:
            (lq, gt), name = item, str(i)
        s, m = _analyse(lq, gt, str(name), crop, max_shift)
        stats.append(s)
        if pooled is None:
            pooled = m
        else:
            pooled += m
    if not stats or pooled is None:
        raise InputError("No pairs to analyse; give at least one (LQ, GT) pair.")
    return _summarise(stats, pooled, tuple(skipped))


def _summarise(stats: list[PairStats], pooled: _Moments, skipped: tuple[str, ...]) -> Analysis:
    def med(attr: str) -> float:
        return _median([getattr(s, attr) for s in stats])

    n = len(stats)
    global_share, smooth_share = med("global_share"), med("smooth_share")
    noise_lq, noise_gt, noise_added = med("noise_lq"), med("noise_gt"), med("noise_added")
    hf_ratio, blockiness = med("hf_ratio"), med("blockiness")
    misaligned = tuple(s.name for s in stats if s.misaligned)

    traits: list[str] = []
    if global_share >= GLOBAL_SHARE_MIN:
        traits.append("global-colour")
    elif global_share + smooth_share >= LOWFREQ_SHARE_MIN:
        traits.append("smooth-spatial")
    if noise_added >= NOISE_ADDED_MIN and noise_lq >= NOISE_RATIO_MIN * noise_gt:
        traits.append("noise")
    if hf_ratio < BLUR_HF_RATIO_MAX:
        traits.append("blur")
    if blockiness >= BLOCKINESS_MIN:
        traits.append("blocking")
    if not traits and med("local_share") > 0:
        traits.append("local-other")
    if misaligned:
        traits.append("misaligned")

    warnings: list[str] = []
    if misaligned:
        worst = max((s for s in stats if s.misaligned), key=lambda s: max(map(abs, s.shift)))
        shown = ", ".join(misaligned[:5]) + (f", ... ({len(misaligned) - 5} more)" if len(misaligned) > 5 else "")
        warnings.append(f"{len(misaligned)} of {n} pairs are misaligned by more than {SHIFT_WARN_PX} px ({shown}; "
                        f"largest: {worst.name} by dy={worst.shift[0]}, dx={worst.shift[1]}): pixel losses then "
                        "learn a blur. Align them first (crop LQ and GT by the shift) or leave them out.")
    if n < FEW_PAIRS:
        warnings.append(f"Only {n} pairs: expect over-fitting; add pairs (a few hundred work well) and keep some "
                        "for validation.")
    psnr = round(float(np.mean([s.psnr for s in stats])), 3)
    if psnr > IDENTICAL_PSNR:
        warnings.append(f"LQ and GT are nearly identical (mean PSNR {psnr:.1f} dB): check that --lq and --gt "
                        "are the degraded and the clean folders.")
    return Analysis(
        n_pairs=n, psnr=psnr, psnr_mapped=round(float(np.mean([s.psnr_mapped for s in stats])), 3),
        global_share=global_share, pooled_global_share=round(_share(pooled.raw, pooled.sse()), 4),
        pooled_affine_share=round(_share(pooled.raw, pooled.sse(_AFFINE)), 4), affine_share=med("affine_share"),
        smooth_share=smooth_share, local_share=med("local_share"), noise_lq=noise_lq, noise_gt=noise_gt,
        noise_added=noise_added, hf_ratio=hf_ratio, blockiness=blockiness, traits=tuple(traits),
        misaligned=misaligned, warnings=tuple(warnings), skipped=skipped, pairs=tuple(stats))


def analyse_folders(lq_dir: str | Path, gt_dir: str | Path, *, max_pairs: int | None = 200,
                    skip_bad: bool = False, crop: int = CROP, max_shift: int = MAX_SHIFT) -> Analysis:
    """Measure the pairs of two folders, matched by file stem as ``daclip-kit data add`` does
    (``0001.jpg`` in LQ with ``0001.png`` in GT), read with :func:`daclip_kit.io.read_image`
    (grayscale as three equal channels, alpha dropped).

    Args:
        lq_dir: the folder of degraded images.
        gt_dir: the folder of clean images (same file stems).
        max_pairs: analyse at most this many pairs, spread evenly over the sorted stems (``None``:
            all); a few hundred are enough to choose.
        skip_bad: leave out unmatched files, unreadable images and pairs of different sizes
            (listed in ``Analysis.skipped``) instead of raising.
        crop: as in :func:`analyse_pair`.
        max_shift: as in :func:`analyse_pair`.

    Raises:
        InputError: a folder is missing or holds no images; without ``skip_bad`` an unmatched
            file, an unreadable image or a pair of different sizes (all listed); no pair left.
    """
    from ..data.add import match_pairs
    from ..io import read_image

    pairs, problems = match_pairs(lq_dir, gt_dir)
    if problems and not skip_bad:
        raise InputError(_problems_message([line for _, line in problems]))
    skipped = [line for _, line in problems]
    if max_pairs is not None:
        if max_pairs < 1:
            raise ConfigError(f"max_pairs must be at least 1 (or None for all), got {max_pairs}.")
        if len(pairs) > max_pairs:
            picks = np.linspace(0, len(pairs) - 1, max_pairs).round().astype(int)
            pairs = [pairs[i] for i in sorted(set(picks.tolist()))]

    bad: list[str] = []

    def read() -> Iterable[tuple[str, Any, Any]]:
        for pair in pairs:
            try:
                lq, gt = read_image(pair.lq), read_image(pair.gt)
            except DaclipKitError as exc:
                bad.append(f"pair {pair.stem}: {exc}")
                continue
            if lq.shape != gt.shape:
                (h1, w1), (h2, w2) = lq.shape[-2:], gt.shape[-2:]
                bad.append(f"pair {pair.stem}: LQ {pair.lq.name} is {w1}x{h1} but GT {pair.gt.name} is {w2}x{h2}; "
                           "paired images must have the same size")
                continue
            if min(lq.shape[-2:]) < MIN_SIDE:
                bad.append(f"pair {pair.stem}: {lq.shape[-1]}x{lq.shape[-2]} is smaller than {MIN_SIDE} px")
                continue
            yield pair.stem, lq, gt

    stats: list[PairStats] = []
    pooled: _Moments | None = None
    for stem, lq, gt in read():  # one pair in memory at a time
        s, m = _analyse(lq, gt, stem, crop, max_shift)
        stats.append(s)
        if pooled is None:
            pooled = m
        else:
            pooled += m
    if bad and not skip_bad:
        raise InputError(_problems_message(bad))
    skipped += bad
    if not stats or pooled is None:
        raise InputError("No usable pairs left to analyse:\n" + "\n".join(skipped))
    return _summarise(stats, pooled, tuple(skipped))


def _problems_message(lines: Sequence[str]) -> str:
    shown = list(lines[:20]) + ([f"... ({len(lines) - 20} more)"] if len(lines) > 20 else [])
    return "\n".join([f"{len(lines)} problem(s) in the pairs (fix them, or pass skip_bad / --skip-bad to leave "
                      "those pairs out):", *shown])


# ----------------------------------------------------------------------------------------------
# decisions


def _number(name: str, value: Any, *, low: float, high: float | None, low_open: bool, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number ({what}), got {value!r}.") from None
    if isinstance(value, bool) or not math.isfinite(number) or number < low or (low_open and number == low) \
            or (high is not None and number > high):
        raise ConfigError(f"{name} must be {what}, got {value!r}.")
    return number


def _check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in OVERRIDABLE:
            raise ConfigError(f"Unknown preflight choice {key!r}.{suggest(str(key), OVERRIDABLE)} "
                              f"The choices that can be set: {', '.join(OVERRIDABLE)}.")
        if key == "objective":
            if value not in OBJECTIVES:
                raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {value!r}.")
        elif key == "init":
            if value not in INITS:
                raise ConfigError(f"init must be one of {', '.join(INITS)}, got {value!r}.")
        elif key == "lr":
            value = _number("lr", value, low=0.0, high=1.0, low_open=True, what="a learning rate in (0, 1]")
        elif key == "new_share":
            value = _number("new_share", value, low=0.0, high=1.0, low_open=True,
                            what="a share in (0, 1]; 1 trains on the new pairs alone")
        else:
            value = _number("daclip_steps_ratio", value, low=0.0, high=None, low_open=False,
                            what="a ratio >= 0 (DA-CLIP steps / restorer steps)")
        out[key] = value
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def decide(analysis: Analysis, overrides: Mapping[str, Any] | None = None, *, model_prediction: str = "noise",
           base_lr: float = BASE_LR) -> Plan:
    """Choose the objective, init, learning rate, replay share and DA-CLIP steps (module docstring).

    Args:
        analysis: what :func:`analyse_folders` / :func:`analyse_pairs` measured.
        overrides: choices set by the caller, any of :data:`OVERRIDABLE` (``objective``: ``noise``
            or ``clean``; ``init``: ``continue`` or ``anew``; ``lr`` in (0, 1]; ``new_share`` in
            (0, 1]; ``daclip_steps_ratio`` >= 0); numbers may be strings. A choice that is not set
            follows from the ones that are (``objective = "clean"`` on a noise model: ``anew``).
        model_prediction: what the given model predicts, ``noise`` (the released one) or ``clean``.
        base_lr: the from-scratch learning rate; continuing uses a quarter or a half of it.

    Raises:
        ConfigError: an unknown choice or value (the message names the allowed ones), or
            ``init = "continue"`` with an objective the given model was not trained for.
    """
    if model_prediction not in OBJECTIVES:
        raise ConfigError(f"model_prediction must be one of {', '.join(OBJECTIVES)}, got {model_prediction!r}.")
    base_lr = _number("base_lr", base_lr, low=0.0, high=1.0, low_open=True, what="a learning rate in (0, 1]")
    given = _check_overrides(overrides or {})
    traits = set(analysis.traits)
    known_like = sorted(traits & {"noise", "blur", "blocking"})
    reasons: list[str] = []

    def mine(name: str) -> str:
        return f"{name}: set by you"

    # objective
    if "objective" in given:
        objective = given["objective"]
        reasons.append(mine("objective"))
    elif "global-colour" in traits:
        objective = "clean"
        reasons.append(f"objective: {_pct(analysis.global_share)} of the LQ->GT difference is a global colour/tone "
                       f"map (median of {analysis.n_pairs} pairs; one map for all pairs: "
                       f"{_pct(analysis.pooled_global_share)}); a clean-predicting network learns it directly, a "
                       "noise-predicting one barely does")
    elif "smooth-spatial" in traits:
        objective = "clean"
        reasons.append(f"objective: {_pct(analysis.lowfreq_share)} of the difference is spatially smooth (global map "
                       f"{_pct(analysis.global_share)}, smooth local tone {_pct(analysis.smooth_share)}: haze, "
                       "uneven light); LQ is far from GT everywhere, where noise prediction drifts")
    else:
        objective = "noise"
        kind = ", ".join(known_like) if known_like else "local artefacts"
        reasons.append(f"objective: the difference is mostly local ({_pct(analysis.local_share)}; {kind}); the "
                       "noise-predicting model handles such degradations")

    # init
    if "init" in given:
        init = given["init"]
        if init == "continue" and objective != model_prediction:
            raise ConfigError(f"init='continue' with objective={objective!r}, but the given model predicts the "
                              f"{model_prediction}; use init='anew' (a fresh network) or objective="
                              f"{model_prediction!r}.")
        reasons.append(mine("init"))
    elif objective == model_prediction:
        init = "continue"
        reasons.append(f"init: the given model already predicts the {objective}: continue it, keeping what it knows")
    else:
        init = "anew"
        reasons.append(f"init: a {model_prediction}-predicting model cannot be continued as a {objective}-predicting "
                       "one: a fresh network of the same architecture")

    # learning rate
    if "lr" in given:
        lr = given["lr"]
        reasons.append(mine("lr"))
    elif init == "anew":
        lr = base_lr
        reasons.append(f"lr: {lr:g}, the from-scratch rate, for a fresh network")
    elif known_like:
        lr = base_lr / 4
        reasons.append(f"lr: {lr:g} (a quarter of {base_lr:g}): close to degradations the model knows "
                       f"({', '.join(known_like)}); a small rate keeps what it knows")
    else:
        lr = base_lr / 2
        reasons.append(f"lr: {lr:g} (half of {base_lr:g}): continuing, on artefacts further from those the model "
                       "knows")

    # replay share
    if "new_share" in given:
        new_share = given["new_share"]
        reasons.append(mine("new_share"))
    elif init == "anew":
        new_share = ANEW_NEW_SHARE
        reasons.append(f"new_share: {new_share:g}, most of each batch from the new pairs: a fresh network has the "
                       "new degradation to learn from nothing, and every batch teaches it to remove the sampler's "
                       f"noise; {1 - new_share:.0%} replays the known degradations so that one model restores them all")
    else:
        new_share = CONTINUE_NEW_SHARE
        reasons.append(f"new_share: {new_share:g}, half of each batch from the new pairs, half replaying the known "
                       "degradations so that they are not forgotten")

    # DA-CLIP steps
    if "daclip_steps_ratio" in given:
        ratio = given["daclip_steps_ratio"]
        reasons.append(mine("daclip_steps_ratio"))
    elif known_like:
        ratio = 2 * DACLIP_STEPS_RATIO
        reasons.append(f"daclip_steps_ratio: {ratio:.3g} (twice the recipes' 2,000/30,000): the degradation resembles "
                       f"known ones ({', '.join(known_like)}); DA-CLIP needs more steps to tell them apart")
    else:
        ratio = DACLIP_STEPS_RATIO
        reasons.append(f"daclip_steps_ratio: {ratio:.3g} (the recipes' 2,000/30,000): a distinct degradation is "
                       "learned quickly")

    return Plan(objective=objective, init=init, lr=float(lr), new_share=float(new_share),
                daclip_steps_ratio=round(float(ratio), 6), reasons=tuple(reasons), warnings=analysis.warnings,
                overridden=tuple(k for k in OVERRIDABLE if k in given))


# ----------------------------------------------------------------------------------------------
# report


def report_lines(analysis: Analysis, plan: Plan | None = None) -> list[str]:
    """Human-readable lines: the measurements, then (with ``plan``) each choice with its reason,
    then the warnings. No trailing newlines; the CLI prints them."""
    a = analysis
    aligned = f"{len(a.misaligned)} misaligned by > {SHIFT_WARN_PX} px" if a.misaligned else "aligned"
    lines = [
        f"Preflight of {a.n_pairs} pair(s)" + (f" ({len(a.skipped)} skipped)" if a.skipped else "") + ":",
        f"  PSNR LQ vs GT           {a.psnr:7.2f} dB   (LQ vs colour-mapped GT {a.psnr_mapped:.2f} dB)",
        f"  global colour/tone map  {_pct(a.global_share):>7}      (affine only {_pct(a.affine_share)}; one map "
        f"for all pairs {_pct(a.pooled_global_share)})",
        f"  smooth local tone       {_pct(a.smooth_share):>7}",
        f"  local structure         {_pct(a.local_share):>7}",
        f"  noise LQ / GT           {a.noise_lq * 255:7.1f} / {a.noise_gt * 255:.1f} /255  (added "
        f"{a.noise_added * 255:.1f}/255)",
        f"  fine detail kept        {a.hf_ratio:7.2f}      (1: as sharp as GT; < {BLUR_HF_RATIO_MAX}: blur-like)",
        f"  8 px blockiness         {a.blockiness:7.2f}      (1: none; >= {BLOCKINESS_MIN}: JPEG-like)",
        f"  alignment               {aligned}",
        f"  traits                  {', '.join(a.traits)}",
    ]
    if plan is not None:
        values = {"objective": plan.objective, "init": plan.init, "lr": f"{plan.lr:g}",
                  "new_share": f"{plan.new_share:g}", "daclip_steps_ratio": f"{plan.daclip_steps_ratio:.3g}"}
        lines.append("Plan:")
        for name, reason in zip(OVERRIDABLE, plan.reasons, strict=True):
            why = reason.split(": ", 1)[1] if ": " in reason else reason
            lines.append(f"  {name:<19} {values[name]:<9} {why}")
    lines.extend(f"Warning: {warning}" for warning in (plan.warnings if plan is not None else a.warnings))
    return lines


def preflight(lq_dir: str | Path, gt_dir: str | Path, overrides: Mapping[str, Any] | None = None, *,
              model_prediction: str = "noise", base_lr: float = BASE_LR, max_pairs: int | None = 200,
              skip_bad: bool = False) -> tuple[Analysis, Plan]:
    """:func:`analyse_folders` then :func:`decide`; see them for the arguments and errors."""
    analysis = analyse_folders(lq_dir, gt_dir, max_pairs=max_pairs, skip_bad=skip_bad)
    return analysis, decide(analysis, overrides, model_prediction=model_prediction, base_lr=base_lr)
