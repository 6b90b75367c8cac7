"""Networks that predict the clean image (``prediction = "clean"``): every sampler runs them through
its SDE's marginals, and a perfect clean predictor restores the ground truth."""

from __future__ import annotations

import pytest
import torch
from _tolerance import ulps

import daclip_kit
from daclip_kit.core.sampler import Sampler, noise_from_output, prediction_of
from daclip_kit.errors import ConfigError

SDE = {"max_sigma": 50.0, "T": 20, "schedule": "cosine", "eps": 0.005}


def _images(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(2, 3, 8, 12, generator=g)
    lq = (0.3 * gt + 0.5 + 0.05 * torch.randn(2, 3, 8, 12, generator=g)).clamp(0, 1)  # far from gt: "hazy"
    return gt, lq, torch.randn(2, 3, 8, 12, generator=g)


@pytest.mark.parametrize("t", [1, 7, 20])
def test_irsde_marginals_are_its_forward_process(t):
    sde = daclip_kit.create_sampler("irsde", **SDE)
    gt, lq, z = _images()
    x_t, _ = sde.forward_noise(gt, lq, t, noise=z)
    eps = noise_from_output(gt, "clean", sde, x_t, lq, float(t))
    assert torch.allclose(eps, z, atol=2e-4)
    # x_t holds gt only to x_t's own rounding, and pred_clean divides that by alpha_t (0.005 at T): 4 ulps of x_t
    alpha, _ = sde.marginals(t)
    assert torch.allclose(sde.pred_clean(x_t, eps, lq, t), gt, atol=ulps(x_t, 4) / alpha, rtol=0)


def test_irsde_marginals_between_steps_lie_between_the_steps():
    sde = daclip_kit.create_sampler("irsde", **SDE)
    (a7, s7), (a75, s75), (a8, s8) = sde.marginals(7), sde.marginals(7.5), sde.marginals(8)
    assert a8 < a75 < a7 and s7 < s75 < s8
    with pytest.raises(ConfigError, match="outside"):
        sde.marginals(20.5)


@pytest.mark.parametrize("name, options", [("mrs", {}), ("mrs", {"training_schedule": True}),
                                           ("heun", {"solver_type": "ode"})])
@pytest.mark.parametrize("t", [3.0, 11.37, 19.9])
def test_mean_reverting_samplers_recover_the_clean_prediction(name, options, t):
    sampler = daclip_kit.create_sampler(name, **SDE, **options)
    gt, lq, z = _images(1)
    alpha, sigma = sampler.marginals(t)
    x = lq + alpha * (gt - lq) + sigma * z
    eps = noise_from_output(gt, "clean", sampler, x, lq, t)
    assert torch.allclose(eps, z, atol=1e-4)
    if name == "mrs":  # the sampler's own clean-image estimate from that noise is the prediction again
        data = sampler.data_prediction(eps, x, lq, torch.tensor(alpha), torch.tensor(sigma))
        assert torch.allclose(data, gt, atol=1e-4)


class Oracle(torch.nn.Module):
    """Predicts the ground truth, whatever it is shown."""

    prediction = "clean"

    def __init__(self, gt: torch.Tensor):
        super().__init__()
        self.gt = gt
        self.calls = 0

    def forward(self, x_t, lq, t, degradation=None, content=None):
        self.calls += 1
        return self.gt.clone()


def _oracle_error(gt, lq, name, options, steps):
    sampler = daclip_kit.create_sampler(name, **SDE, **options)
    oracle = Oracle(gt)
    with torch.no_grad():
        out = daclip_kit.sample(oracle, sampler, lq, steps=steps, generator=torch.Generator().manual_seed(0))
    assert oracle.calls == len(sampler.solver(steps).timesteps)
    return float((out - gt).abs().mean())


@pytest.mark.parametrize("name, options, steps", [
    ("irsde", {"mode": "posterior"}, 20), ("mrs", {"solver_type": "ode", "training_schedule": True}, 5)])
def test_a_perfect_clean_predictor_restores_the_ground_truth(name, options, steps):
    """The posterior and the data-prediction ODE on the training SDE land on the prediction."""
    gt, lq, _ = _images(2)
    assert _oracle_error(gt, lq, name, options, steps) < 0.02 * float((lq - gt).abs().mean())


@pytest.mark.parametrize("name, options, steps", [
    ("irsde", {"mode": "ode"}, 5), ("heun", {"solver_type": "ode"}, 6)])
def test_approximate_solvers_converge_to_the_ground_truth(name, options, steps):
    """Euler and Heun steps stop short of the prediction,
    by less and less as the steps grow."""
    gt, lq, _ = _images(2)
    coarse, fine = (_oracle_error(gt, lq, name, options, n) for n in (steps, 4 * steps))
    assert fine < 0.6 * coarse and fine < 0.25 * float((lq - gt).abs().mean()), (coarse, fine)


def test_the_same_network_read_as_noise_does_not_restore():
    """The conversion is what makes the oracle work: read as a noise prediction it fails."""
    gt, lq, _ = _images(2)
    sampler = daclip_kit.create_sampler("mrs", solver_type="ode", training_schedule=True, **SDE)
    oracle = Oracle(gt)
    oracle.prediction = "noise"
    with torch.no_grad():
        out = daclip_kit.sample(oracle, sampler, lq, steps=5, generator=torch.Generator().manual_seed(0))
    assert (out - gt).abs().mean() > 0.2 * (lq - gt).abs().mean()


def test_unknown_prediction_and_samplers_without_marginals_are_refused():
    gt, lq, _ = _images()
    oracle = Oracle(gt)
    oracle.prediction = "velocity"
    with pytest.raises(ConfigError, match="velocity"):
        prediction_of(oracle)

    class Opaque(Sampler):
        config, default_steps = None, 1

        def solver(self, steps=None):
            raise AssertionError("not reached")

        def noise_state(self, lq, generator=None, noise=None):
            return lq

    with pytest.raises(ConfigError, match="noise-predicting networks"):
        noise_from_output(gt, "clean", Opaque(), lq, lq, 3.0)


def test_the_unet_records_its_prediction_only_when_clean(tmp_path):
    tiny = {"nf": 32, "ch_mult": [1, 1], "context_dim": 0, "use_degra_context": False, "use_image_context": False}
    noise_net = daclip_kit.create_backbone("irsde-unet", **tiny)
    clean_net = daclip_kit.create_backbone("irsde-unet", **tiny, prediction="clean")
    assert noise_net.prediction == "noise" and "prediction" not in noise_net.export_config()
    assert clean_net.export_config()["prediction"] == "clean"
    daclip_kit.save_network(clean_net, tmp_path / "net", name="irsde-unet", config=clean_net.export_config())
    assert daclip_kit.load_network(None, tmp_path / "net").prediction == "clean"
    with pytest.raises(ConfigError, match="prediction: 'x0' is not one of"):
        daclip_kit.create_backbone("irsde-unet", **tiny, prediction="x0")
