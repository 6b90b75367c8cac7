"""The preflight of ``daclip-kit adapt`` (daclip_kit.adapt.preflight): measurements checked against
pairs synthesized from scikit-image's photos with known degradations, the decisions, overrides,
folders and the report."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from daclip_kit.adapt.preflight import (
    ANEW_NEW_SHARE,
    BASE_LR,
    DACLIP_STEPS_RATIO,
    OVERRIDABLE,
    Analysis,
    analyse_folders,
    analyse_pair,
    analyse_pairs,
    decide,
    preflight,
    report_lines,
)
from daclip_kit.errors import ConfigError, InputError

skimage_data = pytest.importorskip("skimage.data")

SIDE = 192


def _photo(name: str) -> np.ndarray:
    img = getattr(skimage_data, name)()
    return img.astype(np.float64) / 255.0


@pytest.fixture(scope="module")
def sources() -> list[np.ndarray]:
    """Five colour photos, (H, W, 3) float in [0, 1], larger than SIDE + margins."""
    return [_photo(n) for n in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")]


@pytest.fixture(scope="module")
def photos(sources) -> list[np.ndarray]:
    """SIDE x SIDE central crops of the photos."""
    out = []
    for p in sources:
        y, x = (p.shape[0] - SIDE) // 2, (p.shape[1] - SIDE) // 2
        out.append(np.ascontiguousarray(p[y:y + SIDE, x:x + SIDE]))
    return out


def _t(a: np.ndarray) -> torch.Tensor:
    """(H, W, 3) array -> (1, 3, H, W) float32 tensor, as io.read_image gives."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None]


def _u8(a: np.ndarray) -> np.ndarray:
    return (np.clip(a, 0, 1) * 255).round().astype(np.uint8)


def _jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(_u8(a)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf), dtype=np.float64) / 255.0


def _blur(a: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(_u8(a)).filter(ImageFilter.GaussianBlur(radius)), dtype=np.float64) / 255.0


def _analyse(photos, degrade) -> Analysis:
    return analyse_pairs([(f"p{i}", _t(degrade(p)), _t(p)) for i, p in enumerate(photos)])


AFFINE_CAST = (np.array([[0.55, 0.15, 0.0], [0.05, 0.7, 0.1], [0.0, 0.15, 0.45]]), np.array([0.2, 0.05, 0.15]))


def _affine_cast(a: np.ndarray) -> np.ndarray:
    m, b = AFFINE_CAST
    out = a @ m.T + b
    assert out.min() >= 0 and out.max() <= 1  # no clipping: an exact 3x3 matrix + bias
    return out


# ---------------------------------------------------------------------------------------------- colour


def test_affine_colour_cast_is_explained_by_the_global_map_and_planned_clean(photos):
    a = _analyse(photos, _affine_cast)
    for p in a.pairs:
        assert p.affine_share > 0.999 and p.global_share > 0.999
        assert p.psnr < 25 and p.psnr_mapped > 45  # a global map undoes it (float32 + exact affine)
        assert p.shift == (0, 0)
        assert p.local_share < 0.001 and p.smooth_share < 0.001
        assert 0.9 < p.hf_ratio < 1.1  # a gain does not blur
    assert a.pooled_global_share > 0.999  # one map for all pairs
    assert a.traits == ("global-colour",)
    plan = decide(a)
    # a fresh network: most of each batch from the new pairs (docs/your-data.md measures 0.5 vs 0.9)
    assert (plan.objective, plan.init, plan.lr, plan.new_share) == ("clean", "anew", BASE_LR, ANEW_NEW_SHARE)
    assert ANEW_NEW_SHARE == 0.9 and plan.reasons[3].startswith("new_share: 0.9,") and "10% replays" in plan.reasons[3]
    assert plan.daclip_steps_ratio == pytest.approx(DACLIP_STEPS_RATIO, abs=1e-6)
    assert "global colour/tone map" in plan.reasons[0] and plan.reasons[0].startswith("objective:")


def test_tone_curve_needs_the_polynomial_and_varying_casts_lower_the_pooled_share(photos):
    gammas = [(0.5, 0.8, 1.6), (1.8, 1.0, 0.6), (0.7, 1.4, 1.0), (1.0, 0.5, 2.0), (2.2, 1.7, 0.45)]

    def pairs():
        for i, (p, g) in enumerate(zip(photos, gammas, strict=True)):
            yield f"p{i}", _t(p ** np.array(g)), _t(p)

    a = analyse_pairs(pairs())
    for p in a.pairs:
        assert p.global_share > 0.97 and p.psnr_mapped > 35  # per-channel curves: a cubic fits them closely
        assert p.global_share >= p.affine_share
    assert 1 - a.global_share < 0.5 * (1 - a.affine_share)  # a straight line leaves much more
    # each image has its own curves: one map for all explains less than each image's own
    assert a.pooled_global_share < a.global_share - 0.1
    assert "global-colour" in a.traits


def test_colour_cast_with_jpeg_is_planned_clean_anew(photos):
    a = _analyse(photos, lambda p: _jpeg(_affine_cast(p), 30))
    assert 0.6 < a.global_share < 0.98
    assert {"global-colour", "blocking"} <= set(a.traits)
    plan = decide(a)
    assert (plan.objective, plan.init) == ("clean", "anew")


# ---------------------------------------------------------------------------------------------- noise


@pytest.mark.parametrize("sigma255", [10, 25, 50])
def test_gaussian_noise_level_is_measured_within_20_percent(photos, sigma255):
    sigma = sigma255 / 255
    rng = np.random.default_rng(sigma255)
    a = _analyse(photos, lambda p: np.clip(p + rng.normal(0, sigma, p.shape), 0, 1))
    for p in a.pairs:
        assert p.noise_added == pytest.approx(sigma, rel=0.2), p
        assert p.noise_gt < max(0.025, 0.25 * sigma)  # texture (where LQ is not clipped) reads as a little noise
        assert p.shift == (0, 0)
        assert p.hf_ratio > 0.6  # noise is not blur
        assert 0.85 < p.blockiness < 1.15
    assert a.noise_added == pytest.approx(sigma, rel=0.15)
    assert "noise" in a.traits and "global-colour" not in a.traits and "blur" not in a.traits
    assert a.local_share > 0.6
    plan = decide(a)
    assert (plan.objective, plan.init, plan.new_share) == ("noise", "continue", 0.5)
    assert plan.lr == pytest.approx(BASE_LR / 4)
    assert plan.daclip_steps_ratio == pytest.approx(2 * DACLIP_STEPS_RATIO, abs=1e-6)


def test_clean_pairs_read_almost_no_added_noise(photos):
    a = _analyse(photos, lambda p: p + 0.0)  # identical
    assert a.noise_added == 0 and a.global_share == 0 and a.local_share == 0
    assert a.psnr == 99.0
    assert "noise" not in a.traits and "local-other" not in a.traits
    assert any("nearly identical" in w for w in a.warnings)


# ---------------------------------------------------------------------------------------------- alignment


@pytest.mark.parametrize("dy, dx", [(3, 0), (0, -3), (-2, 3), (5, -4)])
def test_shift_is_found_and_warned(sources, dy, dx):
    m = 8

    def pairs():
        for i, p in enumerate(sources):
            gt = p[m:m + SIDE, m:m + SIDE]
            lq = p[m - dy:m - dy + SIDE, m - dx:m - dx + SIDE]  # lq[y, x] = gt[y - dy, x - dx]
            yield f"p{i}", _t(lq), _t(gt)

    a = analyse_pairs(pairs())
    assert [p.shift for p in a.pairs] == [(dy, dx)] * len(sources)
    assert a.misaligned == tuple(f"p{i}" for i in range(len(sources)))
    assert "misaligned" in a.traits
    assert any("misaligned by more than 1 px" in w and f"dy={dy}, dx={dx}" in w for w in a.warnings)
    # aligned, the pairs are identical: nothing else is measured
    assert all(p.psnr_mapped > 60 and p.global_share == 0 for p in a.pairs)
    assert decide(a).warnings == a.warnings


def test_one_pixel_shift_is_measured_but_not_warned(sources):
    p = sources[0]
    gt, lq = p[10:10 + SIDE, 10:10 + SIDE], p[10:10 + SIDE, 9:9 + SIDE]
    stats = analyse_pair(_t(lq), _t(gt))
    assert stats.shift == (0, 1) and not stats.misaligned
    a = analyse_pairs([(_t(lq), _t(gt))])
    assert a.misaligned == () and not any("misaligned" in w for w in a.warnings)


def test_noisy_shifted_pair_is_still_found(sources):
    rng = np.random.default_rng(1)
    p = sources[1]
    gt = p[20:20 + SIDE, 20:20 + SIDE]
    lq = np.clip(p[17:17 + SIDE, 20:20 + SIDE] + rng.normal(0, 25 / 255, gt.shape), 0, 1)
    assert analyse_pair(_t(lq), _t(gt)).shift == (3, 0)


# ---------------------------------------------------------------------------------------------- blur, JPEG


def test_gaussian_blur_is_blur_like_and_local(photos):
    strong = _analyse(photos, lambda p: _blur(p, 2.0))
    mild = _analyse(photos, lambda p: _blur(p, 0.8))
    for s, w in zip(strong.pairs, mild.pairs, strict=True):
        assert s.hf_ratio < 0.35
        assert s.hf_ratio < w.hf_ratio < 1.0  # more blur, less fine detail kept
        assert s.noise_added < 0.005
        assert s.global_share < 0.2 and s.local_share > 0.75
    assert strong.global_share < 0.12
    assert "blur" in strong.traits and "global-colour" not in strong.traits
    plan = decide(strong)
    assert (plan.objective, plan.init, plan.new_share) == ("noise", "continue", 0.5)
    assert plan.lr == pytest.approx(BASE_LR / 4)


def test_jpeg_blocking_is_local_and_blocky(photos):
    a = _analyse(photos, lambda p: _jpeg(p, 10))
    for p in a.pairs:
        assert p.blockiness > 1.5
        assert p.global_share < 0.3 and p.local_share > 0.6
        assert p.noise_added < 0.005
    good = _analyse(photos, lambda p: _jpeg(p, 95))
    assert all(p.blockiness < 1.2 for p in good.pairs)
    assert "blocking" in a.traits and "global-colour" not in a.traits and "noise" not in a.traits
    plan = decide(a)
    assert (plan.objective, plan.init) == ("noise", "continue")


def test_other_local_artefacts_continue_at_half_the_rate(photos):
    def stripes(p):  # thin horizontal bands of alternating tint: local, neither noise, blur nor blocks
        rows = (np.arange(p.shape[0]) // 3) % 2
        return np.clip(p + 0.08 * (rows[:, None, None] - 0.5), 0, 1)

    a = _analyse(photos, stripes)
    assert a.traits == ("local-other",)
    plan = decide(a)
    assert (plan.objective, plan.init) == ("noise", "continue")
    assert plan.lr == pytest.approx(BASE_LR / 2)
    assert plan.daclip_steps_ratio == pytest.approx(DACLIP_STEPS_RATIO, abs=1e-6)


def test_smooth_spatial_change_is_planned_clean(photos):
    def vignette(p):  # strong radial darkening plus a lift: no single colour map, spatially smooth
        yy, xx = np.mgrid[0:p.shape[0], 0:p.shape[1]] / p.shape[0] - 0.5
        fall = np.exp(-(yy ** 2 + xx ** 2) / 0.08)[..., None]
        return p * (0.2 + 0.8 * fall) + 0.25 * (1 - fall)

    a = _analyse(photos, vignette)
    assert a.global_share + a.smooth_share >= 0.6
    assert "global-colour" in a.traits or "smooth-spatial" in a.traits
    assert decide(a).objective == "clean"


# ---------------------------------------------------------------------------------------------- decisions


@pytest.fixture(scope="module")
def noise_analysis(photos) -> Analysis:
    rng = np.random.default_rng(0)
    return _analyse(photos[:2], lambda p: np.clip(p + rng.normal(0, 25 / 255, p.shape), 0, 1))


def test_overrides_are_applied_and_the_rest_follows(noise_analysis):
    plan = decide(noise_analysis, {"objective": "clean"})
    assert (plan.objective, plan.init, plan.lr, plan.new_share) == ("clean", "anew", BASE_LR, ANEW_NEW_SHARE)
    plan = decide(noise_analysis, {"objective": "clean", "new_share": 0.5})  # a fresh network, replaying half
    assert (plan.init, plan.new_share, plan.overridden) == ("anew", 0.5, ("objective", "new_share"))
    plan = decide(noise_analysis, {"objective": "clean"})
    assert plan.overridden == ("objective",)
    assert plan.reasons[0] == "objective: set by you"
    plan = decide(noise_analysis, {"lr": "3e-5", "new_share": 0.25, "daclip_steps_ratio": 0})
    assert (plan.lr, plan.new_share, plan.daclip_steps_ratio) == (3e-5, 0.25, 0.0)
    assert plan.overridden == ("lr", "new_share", "daclip_steps_ratio")
    # a clean-predicting model is continued with a clean objective
    plan = decide(noise_analysis, {"objective": "clean"}, model_prediction="clean")
    assert (plan.objective, plan.init) == ("clean", "continue")
    assert decide(noise_analysis, base_lr=1e-3).lr == pytest.approx(2.5e-4)


@pytest.mark.parametrize("overrides, match", [
    ({"objectiv": "clean"}, r"Unknown preflight choice 'objectiv'.*Did you mean: objective.*objective, init, lr"),
    ({"objective": "x0"}, r"objective must be one of noise, clean, got 'x0'"),
    ({"init": "head"}, r"init must be one of continue, anew"),
    ({"lr": -1}, r"lr must be a learning rate in \(0, 1\]"),
    ({"lr": "fast"}, r"lr must be a number"),
    ({"new_share": 0}, r"new_share must be a share in \(0, 1\]"),
    ({"new_share": 1.5}, r"new_share must be a share in \(0, 1\]"),
    ({"daclip_steps_ratio": -0.1}, r"daclip_steps_ratio must be a ratio >= 0"),
    ({"objective": "clean", "init": "continue"}, r"init='continue' with objective='clean'.*predicts the noise.*anew"),
])
def test_bad_overrides_name_the_allowed_values(noise_analysis, overrides, match):
    with pytest.raises(ConfigError, match=match):
        decide(noise_analysis, overrides)


def test_bad_model_prediction(noise_analysis):
    with pytest.raises(ConfigError, match="model_prediction must be one of noise, clean"):
        decide(noise_analysis, model_prediction="x0")


def test_plan_and_analysis_are_frozen_and_json(noise_analysis):
    plan = decide(noise_analysis)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.lr = 1.0  # type: ignore[misc]
    d = json.loads(json.dumps(plan.to_dict()))
    assert set(d) == {*OVERRIDABLE, "reasons", "warnings", "overridden"}
    assert len(d["reasons"]) == len(OVERRIDABLE)
    assert [r.split(":")[0] for r in d["reasons"]] == list(OVERRIDABLE)
    a = json.loads(json.dumps(noise_analysis.to_dict()))
    assert a["n_pairs"] == 2 and len(a["pairs"]) == 2 and a["pairs"][0]["shift"] == [0, 0]
    assert "pairs" not in noise_analysis.to_dict(pairs=False)


def test_report_lines_show_measurements_choices_and_warnings(noise_analysis):
    plan = decide(noise_analysis, {"lr": 1e-5})
    lines = report_lines(noise_analysis, plan)
    text = "\n".join(lines)
    assert lines[0] == "Preflight of 2 pair(s):"
    assert f"{noise_analysis.noise_lq * 255:.1f}" in text and "PSNR LQ vs GT" in text
    for name in OVERRIDABLE:
        assert any(line.strip().startswith(name) for line in lines), name
    assert any(line.strip().startswith("lr") and "1e-05" in line and "set by you" in line for line in lines)
    assert lines[-1].startswith("Warning: Only 2 pairs")
    assert all("\n" not in line for line in lines)
    assert not any(line.startswith("Plan:") for line in report_lines(noise_analysis))


# ---------------------------------------------------------------------------------------------- inputs


def test_pair_of_different_sizes_is_refused(photos):
    with pytest.raises(InputError, match=r"pair 0: LQ is 192x192 but GT is 191x192.*same size"):
        analyse_pair(_t(photos[0]), _t(photos[0][:, :191]))
    with pytest.raises(InputError, match="at least 32 px"):
        analyse_pair(_t(photos[0][:20]), _t(photos[0][:20]))
    with pytest.raises(InputError, match="No pairs"):
        analyse_pairs([])


def _save(path, arr: np.ndarray, mode: str = "RGB") -> None:
    img = Image.fromarray(_u8(arr))
    if mode == "L":
        img = img.convert("L")
    elif mode == "RGBA":
        img = img.convert("RGBA")
        img.putalpha(128)
    img.save(path)


def test_folders_grey_rgba_and_jpeg_files(tmp_path, photos):
    lq_dir, gt_dir = tmp_path / "lq", tmp_path / "gt"
    lq_dir.mkdir()
    gt_dir.mkdir()
    rng = np.random.default_rng(3)
    sigma = 25 / 255
    for i, p in enumerate(photos):
        mode = ("RGB", "L", "RGBA", "RGB", "RGB")[i]
        _save(gt_dir / f"{i:03d}.png", p, mode)
        if mode == "L":  # one grey channel: the noise is added to it, and read as three equal channels
            grey = np.asarray(Image.fromarray(_u8(p)).convert("L"), dtype=np.float64)[..., None] / 255
            noisy = np.repeat(np.clip(grey + rng.normal(0, sigma, grey.shape), 0, 1), 3, 2)
        else:
            noisy = np.clip(p + rng.normal(0, sigma, p.shape), 0, 1)
        _save(lq_dir / f"{i:03d}.png", noisy, mode)
    a = analyse_folders(lq_dir, gt_dir)
    assert a.n_pairs == 5 and [p.name for p in a.pairs] == ["000", "001", "002", "003", "004"]
    for p in a.pairs:
        assert p.noise_added == pytest.approx(sigma, rel=0.2), p
    _, plan = preflight(lq_dir, gt_dir, {"new_share": 0.3})
    assert (plan.objective, plan.init, plan.new_share) == ("noise", "continue", 0.3)
    assert analyse_folders(lq_dir, gt_dir, max_pairs=2).n_pairs == 2


def test_folder_problems_are_listed_or_skipped(tmp_path, photos):
    lq_dir, gt_dir = tmp_path / "lq", tmp_path / "gt"
    lq_dir.mkdir()
    gt_dir.mkdir()
    for i, p in enumerate(photos[:3]):
        _save(gt_dir / f"{i}.png", p)
        _save(lq_dir / f"{i}.jpg", p * 0.7)
    _save(lq_dir / "1.jpg", photos[1][:100])  # different size
    _save(lq_dir / "9.jpg", photos[0])  # no GT
    with pytest.raises(InputError) as err:
        analyse_folders(lq_dir, gt_dir)
    assert "no GT image with stem '9'" in str(err.value) and "skip_bad" in str(err.value)
    (lq_dir / "9.jpg").unlink()
    with pytest.raises(InputError, match=r"pair 1: LQ 1\.jpg is 192x100 but GT 1\.png is 192x192"):
        analyse_folders(lq_dir, gt_dir)
    a = analyse_folders(lq_dir, gt_dir, skip_bad=True)
    assert a.n_pairs == 2 and len(a.skipped) == 1 and "pair 1" in a.skipped[0]
    assert "(1 skipped)" in report_lines(a)[0]
    with pytest.raises(InputError, match="is not a folder"):
        analyse_folders(tmp_path / "missing", gt_dir)
    with pytest.raises(ConfigError, match="max_pairs must be at least 1"):
        analyse_folders(lq_dir, gt_dir, max_pairs=0)
