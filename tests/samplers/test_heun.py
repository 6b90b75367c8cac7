"""The ``heun`` baseline: evaluation count, noise draws, the update rule, and convergence with a
perfect network; and equal-NFE comparability with ``irsde`` (Euler) and ``mrs``."""

from __future__ import annotations

import math

import pytest
import torch
from _tolerance import ulps

import daclip_kit
from daclip_kit.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def heun(**kw):
    return daclip_kit.create_sampler("heun", **kw)


def psnr(a, b):
    return -10 * math.log10(float(((a - b) ** 2).mean()))


class Recorder(torch.nn.Module):
    """Wraps a network and records every ``(x, t)`` it is called with."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, []

    def forward(self, x, lq, t, degradation=None, content=None):
        self.calls.append((x.clone(), t))
        return self.net(x, lq, t)


@pytest.mark.parametrize("steps", [1, 2, 5, 6, 11])
@pytest.mark.parametrize("solver_type", ["sde", "ode"])
def test_nfe_equals_steps_and_sde_draws_like_the_official_code(images, stand_in, steps, solver_type):
    gt, lq, z = images(shape=(1, 3, 8, 8))
    sampler = heun(solver_type=solver_type)
    grid = sampler.time_grid(steps)
    assert grid == torch.linspace(100, 0, steps + 1, dtype=torch.float64).tolist()
    pairs = [t for s in range(0, steps - 1, 2) for t in (grid[s], grid[s + 2])]
    assert sampler.timesteps(steps) == tuple(pairs + ([grid[-2]] if steps % 2 else []))
    net = stand_in(sampler, gt, tanh_noise=0.05)
    # one draw for each predictor and each corrector, one for a final Euler step: ``steps`` in all
    n_draws = steps if solver_type == "sde" else 0
    draws = [torch.randn(gt.shape, generator=torch.Generator().manual_seed(k)) for k in range(n_draws)]
    out = daclip_kit.sample(net, sampler, lq, x_T=sampler.noise_state(lq, noise=z), steps=steps, noise=draws)
    assert len(net.times) == steps and out.shape == lq.shape
    if solver_type == "sde":
        with pytest.raises(ConfigError, match="needs more"):
            daclip_kit.sample(net, sampler, lq, x_T=lq, steps=steps, noise=draws[:-1])


def test_one_heun_step_by_hand(images, stand_in):
    """Two evaluations: Euler-Maruyama predictor from t=100 to 0, trapezoidal corrector. The score
    is ``-eps / sigma_bar_t`` and the step spans ``(100 - 0) * dt``."""
    gt, lq, z = images(shape=(1, 3, 8, 8), seed=1)
    sampler = heun()
    net = Recorder(stand_in(sampler, gt, tanh_noise=0.05))
    z1, z2 = (torch.randn(gt.shape, generator=torch.Generator().manual_seed(k)) for k in (1, 2))
    x = sampler.noise_state(lq, noise=z)
    out = daclip_kit.sample(net, sampler, lq, x_T=x, steps=2, noise=[z1, z2])
    sched = sampler.schedule
    theta, g, sbar = sched.thetas.double(), sched.diffusion.double(), sched.sigma_array.double()
    span = 100 * float(sched.dt)

    def drift(y, t):
        eps = net.net(y, lq, float(t))
        return theta[t] * (lq - y) + g[t] ** 2 * eps / sbar[t]

    f0 = drift(x, 100)
    x_hat = x - f0 * span + g[100] * math.sqrt(span) * z1
    assert [t for _, t in net.calls] == [100.0, 0.0]
    torch.testing.assert_close(net.calls[1][0], x_hat.float(), atol=1e-5, rtol=1e-5)
    expected = x - 0.5 * (f0 + drift(x_hat.float(), 0)) * span + 0.5 * (g[100] + g[0]) * math.sqrt(span) * z2
    # the sampler's float32 x_hat (up to 12) differs from this one by its roundings, ~3 ulps; the corrector's
    # call at t = 0 divides that by sigma_0 twice (the stand-in's noise, then g^2 eps / sigma_bar): x 50 here
    gain = 0.5 * span * float(g[0] ** 2 / sbar[0] ** 2)
    torch.testing.assert_close(out, expected.float(), atol=ulps(x_hat, 3) * gain + ulps(expected, 4), rtol=0)


def test_public_euler_step_uses_the_marginal_std(images):
    _gt, lq, z = images(shape=(1, 3, 8, 8), seed=2)
    sampler = heun(solver_type="ode")
    x = lq + 0.1 * z
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    s = sampler.schedule
    t, t_prev = 50.5, 40.0  # a fractional start: coefficients are interpolated
    theta = 0.5 * (s.thetas[50] + s.thetas[51])
    g = 0.5 * (s.diffusion[50] + s.diffusion[51])
    sbar = 0.5 * (s.sigma_array[50] + s.sigma_array[51])
    expected = x - (theta * (lq - x) + 0.5 * g ** 2 * eps / sbar) * (t - t_prev) * s.dt
    got = sampler.step(eps, t, x, lq, t_prev=t_prev)
    torch.testing.assert_close(got.prev_sample, expected, atol=1e-6, rtol=1e-5)
    # dividing by the diffusion coefficient g (the official HeunSampler) gives another update
    official = x - (theta * (lq - x) + 0.5 * g * eps) * (t - t_prev) * s.dt
    assert float((got.prev_sample - official).abs().max()) > 1e-3
    assert sampler.step(eps, 100.0, x, lq).prev_sample.shape == x.shape  # default t_prev: next grid time


def test_ode_with_a_perfect_network_approaches_the_clean_image(images, stand_in):
    """Heun on the probability-flow ODE is explicit, so it needs many steps near t = 0 (where the
    drift is stiff); from 50 steps on it converges. Its limit is ~47 dB from the clean image, not
    exact: the linearly interpolated continuous-time theta does not reproduce the discrete
    schedule's marginals."""
    gt, lq, z = images(seed=3)
    sampler = heun(solver_type="ode")
    x_T = sampler.noise_state(lq, noise=z)
    scores = [psnr(daclip_kit.sample(stand_in(sampler, gt), sampler, lq, x_T=x_T, steps=n), gt) for n in (50, 100, 200)]
    assert scores[0] < scores[1] < scores[2] and scores[2] > 45, scores


def test_sde_with_a_perfect_network_approaches_the_clean_image(images, stand_in):
    gt, lq, z = images(seed=4)
    sampler = heun()
    x_T = sampler.noise_state(lq, noise=z)
    scores = [psnr(daclip_kit.sample(stand_in(sampler, gt), sampler, lq, x_T=x_T, steps=n,
                                     generator=torch.Generator().manual_seed(0)), gt) for n in (50, 100, 200)]
    assert scores[0] < scores[1] < scores[2] and scores[2] > 40, scores


@pytest.mark.parametrize("steps", [4, 7, 10])
def test_the_three_samplers_compare_at_equal_nfe(images, stand_in, steps):
    """``steps`` is the number of network evaluations of every sampler."""
    gt, lq, z = images(shape=(1, 3, 8, 8))
    euler = daclip_kit.create_sampler("irsde", mode="sde")
    samplers = [euler, daclip_kit.create_sampler("mrs"), daclip_kit.create_sampler("mrs", solver_type="sde"), heun(),
                heun(solver_type="ode")]
    for sampler in samplers:
        assert len(sampler.timesteps(steps)) == steps
        net = _EulerNet(euler, gt) if sampler is euler else stand_in(sampler, gt)
        out = daclip_kit.sample(net, sampler, lq, x_T=lq + 0.2 * z, steps=steps,
                                generator=torch.Generator().manual_seed(0))
        calls = net.count if sampler is euler else len(net.times)
        assert calls == steps and torch.isfinite(out).all()


class _EulerNet(torch.nn.Module):
    """Exact noise for the IR-SDE schedule (which subtracts theta_0), counting calls."""

    def __init__(self, sde, gt):
        super().__init__()
        self.sde, self.gt, self.count = sde, gt, 0

    def forward(self, x, lq, t, degradation=None, content=None):
        self.count += 1
        return self.sde.noise_from_state(x, self.gt, lq, int(t))


def test_solver_state_is_per_run(images, stand_in):
    gt, lq, z = images(shape=(1, 3, 8, 8), seed=5)
    sampler = heun(solver_type="ode")
    x_T = sampler.noise_state(lq, noise=z)
    net = stand_in(sampler, gt, tanh_noise=0.05)
    first = daclip_kit.sample(net, sampler, lq, x_T=x_T, steps=6)
    daclip_kit.sample(net, sampler, lq, x_T=x_T + 0.1, steps=5)
    assert torch.equal(daclip_kit.sample(net, sampler, lq, x_T=x_T, steps=6), first)
    solver = sampler.solver(2)
    x = x_T
    for t in solver.timesteps:
        x = solver.step(net(x, lq, t), x, lq, draw=None)
    with pytest.raises(ConfigError, match="new solver"):
        solver.step(x, x, lq, draw=None)


def test_config():
    s = heun()
    assert s.default_steps == 100 and s.config.solver_type == "sde"
    pasted = heun(num_sample_steps=20, algorithm="heun", max_sigma=50, T=100, schedule="cosine", eps=0.005)
    assert pasted.default_steps == 20
    for kwargs, key in [({"solver_type": "euler"}, "solver_type"), ({"algorithm": "mrsampler"}, "algorithm"),
                        ({"num_sample_steps": 0}, "num_sample_steps"), ({"order": 2}, "order"),
                        ({"T": 0}, "T")]:
        with pytest.raises(ConfigError, match=key):
            heun(**kwargs)
    with pytest.raises(ConfigError, match="steps"):
        s.solver(0)
