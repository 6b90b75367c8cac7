"""Built-in plugin: registers the image-quality metrics (no torch import)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import MetricSpec

_M = "daclip_kit.metrics"


@hookimpl
def daclip_kit_register_metrics():
    return [
        MetricSpec(name="psnr", target=f"{_M}.peak_snr:psnr", higher_is_better=True,
                   summary="PSNR (dB) on uint8-rounded RGB, 4-pixel border crop (official protocol)"),
        MetricSpec(name="psnr-y", target=f"{_M}.peak_snr:psnr_y", higher_is_better=True,
                   summary="PSNR (dB) on BT.601 luma, uint8 rounding, 4-pixel border crop"),
        MetricSpec(name="ssim", target=f"{_M}.structural:ssim", higher_is_better=True,
                   summary="SSIM, 11x11 Gaussian window (sigma 1.5), uint8 RGB, 4-pixel crop"),
        MetricSpec(name="ssim-y", target=f"{_M}.structural:ssim_y", higher_is_better=True,
                   summary="SSIM on BT.601 luma, 11x11 Gaussian window, 4-pixel crop"),
        MetricSpec(name="lpips", target=f"{_M}.perceptual:lpips", higher_is_better=False,
                   meter=f"{_M}.meters:LPIPSMeter",
                   summary="LPIPS v0.1, AlexNet trunk (needs alexnet-owt-7be5be79.pth)"),
        MetricSpec(name="fid", target=f"{_M}.fid_score:fid", higher_is_better=False, paired=False,
                   meter=f"{_M}.meters:FIDMeter",
                   summary="FID as pytorch-fid: Inception pool3 2048-d, set vs set "
                           "(needs pt_inception-2015-12-05-6726825d.pth)"),
        MetricSpec(name="niqe", target=f"{_M}.naturalness:niqe", higher_is_better=False, needs_reference=False,
                   summary="NIQE (no reference): MATLAB/BasicSR protocol on BT.601 luma, 96x96 blocks, "
                           "bundled pristine model"),
        MetricSpec(name="clipiqa", target=f"{_M}.clip_quality:clipiqa", higher_is_better=True, needs_reference=False,
                   meter=f"{_M}.meters:CLIPIQAMeter",
                   summary="CLIP-IQA zero-shot (no reference): P('Good photo.') with the DA-CLIP's plain CLIP"),
    ]
