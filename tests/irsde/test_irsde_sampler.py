"""The IR-SDE sampler against the official SDE's recorded numbers, and its own properties."""

from __future__ import annotations

import pytest
import torch
from _tolerance import EPS32, PARITY_ATOL, assert_within, ulps

from daclip_kit.errors import ConfigError
from daclip_kit.factory import create_sampler
from daclip_kit.samplers.irsde.config import IRSDEConfig
from daclip_kit.samplers.irsde.sampler import IRSDESampler

ATOL = PARITY_ATOL
# sigma_bar_t ** 2 = lam ** 2 (1 - exp(-2 theta_bar_t dt)): exp faithful on both sides (2 ulps apart), its
# argument carrying the thetas' error (below), and 1 - exp cancels at small t: up to 12 ulps of lam ** 2
N_SIGMA_BAR2 = 12

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture
def sde(golden):
    cfg = golden("irsde_sde.golden.pt")["sde_config"]
    return create_sampler("irsde", max_sigma=cfg["max_sigma"], T=cfg["T"], schedule=cfg["schedule"], eps=cfg["eps"])


def test_schedule_matches_official(golden, sde):
    ref = golden("irsde_sde.golden.pt")["schedule"]
    lam2 = sde.max_sigma ** 2
    # Tolerances: cos and exp are faithful on both sides (up to 2 ulps apart).
    # thetas = 1 - abar, abar = cos^2 / cos_0^2 <= 1 (8 ulps from the two squared cosines, plus roundings):
    # the subtraction cancels, so 10 ulps of 1, not of the small thetas. sigmas ** 2 = 2 lam^2 thetas: the same.
    # thetas_cumsum adds up to 101 of those independent errors (about sqrt(101) = 10 times one: 100 ulps of 1,
    # 2 ulps of its largest value 50.9) and rounds each partial sum: 20 ulps of the largest value.
    # sigma_bars ** 2: N_SIGMA_BAR2 ulps of lam ** 2 (see there). dt = -log(eps) / thetas_cumsum[-1]: relative
    # error of thetas_cumsum[-1] (20 ulps) and two roundings.
    bounds = {"thetas": (1, ulps(1.0, 10)), "sigmas": (2, ulps(2 * lam2, 10)),
              "thetas_cumsum": (1, ulps(ref["thetas_cumsum"], 20)), "sigma_bars": (2, ulps(lam2, N_SIGMA_BAR2))}
    for name, (power, bound) in bounds.items():
        got = getattr(sde.schedule, name)
        assert got.shape == (101,)
        assert_within(got.double() ** power, ref[name].double() ** power, bound, name)
    torch.testing.assert_close(sde.schedule.dt, ref["dt"], atol=ulps(ref["dt"], 22), rtol=0)
    assert sde.max_sigma == pytest.approx(float(ref["max_sigma"]), abs=ulps(ref["max_sigma"], 1))  # float32 of 50/255
    std = torch.stack([sde.reverse_optimum_std(t) for t in range(1, 101)]).double()
    # std ** 2 = lam^2 (1 - A^2)(1 - C^2) / (1 - B^2): each 1 - X off by ~15 ulps of 1 (as sigma_bars) and both
    # ratios <= 1 (1 - B^2 >= 1 - A^2, 1 - C^2), so 3 x 15 ulps of lam ** 2, and a few more for the roundings
    assert_within(std ** 2, ref["reverse_optimum_std[1..T]"].double() ** 2, ulps(lam2, 48), "reverse_optimum_std")


def _posterior_mean_bound(sched: dict, t: torch.Tensor, x_t: torch.Tensor, x0: torch.Tensor, mu: torch.Tensor,
                          lam: float) -> torch.Tensor:
    """Bound on |ours - official| for ``reverse_optimum_step`` (``t`` an int tensor broadcastable to the
    images, ``sched`` the official schedule): ``term1 (x_t - mu) + term2 (x0 - mu) + mu`` with
    ``term1 = A (1 - C^2) / (1 - B^2)``, ``term2 = C (1 - A^2) / (1 - B^2)``. Each ``1 - X^2`` is off by ~15 ulps
    of 1 (see the std in test_schedule_matches_official), a relative error of 15 ulps over ``1 - X^2``: large at
    small ``t`` (``1 - A^2 = 2.2e-3`` at ``t = 5``), where the official formula itself is ill-conditioned."""
    dt = float(sched["dt"])
    one_minus = {  # 1 - A^2, 1 - B^2, 1 - C^2
        "A": 1 - torch.exp(-2 * sched["thetas"].double()[t] * dt),
        "B": sched["sigma_bars"].double()[t] ** 2 / lam ** 2,
        "C": sched["sigma_bars"].double()[t - 1] ** 2 / lam ** 2,
    }
    rel = {k: ulps(1.0, 15) / v for k, v in one_minus.items()}
    term1 = (1 - one_minus["A"]).sqrt() * one_minus["C"] / one_minus["B"]
    term2 = (1 - one_minus["C"]).sqrt() * one_minus["A"] / one_minus["B"]
    err = ((rel["C"] + rel["B"]) * term1 * (x_t - mu).double().abs()
           + (rel["A"] + rel["B"]) * term2 * (x0 - mu).double().abs())
    return err + ulps(1.0, 4)  # the products and sums, on values below 2


@pytest.mark.parametrize("case", ["t37", "t_batch"])
def test_step_quantities_match_official(golden, sde, case):
    g = golden("irsde_sde.golden.pt")
    i, ref = g["inputs"], g["steps"][case]
    t = int(ref["t"]) if case == "t37" else ref["t"]
    x0, mu, noise, pred_noise = i["x0"], i["mu"], i["noise"], i["pred_noise"]
    xt, _ = sde.forward_noise(x0, mu, t, noise=noise)
    score = sde.score_from_noise(pred_noise, t)
    got = {
        "mu_bar(x0,t)": sde.mu_bar(x0, mu, t),
        "sigma_bar(t)": sde.sigma_bar(t),
        "xt": xt,
        "score_from_pred_noise": score,
        "reverse_sde_step_mean(xt,score,t)": sde.reverse_sde_mean(xt, score, mu, t),
        "reverse_optimum_step(xt,x0,t)": sde.reverse_optimum_step(xt, x0, mu, t),
        "l1_loss(pred,target)": sde.training_loss(pred_noise, xt, x0, mu, t),
        "get_init_state_from_noise(xt,noise,t)": sde.pred_clean(xt, noise, mu, t),
        "reverse_optimum_std(t)": sde.reverse_optimum_std(t),
        "get_real_noise(xt,x0,t)": sde.noise_from_state(xt, x0, mu, t),
    }
    for name, value in got.items():
        assert tuple(value.shape) == tuple(ref[name].shape), name
        if name == "score_from_pred_noise":  # -noise / sigma_bar_t, up to 191 at t = 5: ATOL is below its ulp
            sigma_bar = ref["sigma_bar(t)"].double()
            # sigma_bar_t's relative error (half that of sigma_bar_t ** 2) and the division's rounding
            rel = ulps(sde.max_sigma ** 2, N_SIGMA_BAR2) / (2 * sigma_bar ** 2) + 2 * EPS32
            assert_within(value, ref[name], rel * ref[name].double().abs(), name)
            continue
        if name == "reverse_optimum_step(xt,x0,t)":  # ill-conditioned at t = 5 (see _posterior_mean_bound)
            steps = torch.as_tensor(ref["t"]).long()
            bound = _posterior_mean_bound(g["schedule"], steps, ref["xt"], x0, mu, sde.max_sigma)
            assert_within(value, ref[name], bound.clamp(min=ATOL), name)  # parity where that is looser
            continue
        torch.testing.assert_close(value, ref[name], atol=ATOL, rtol=0, msg=name)


@pytest.mark.parametrize("mode", ["posterior", "sde"])
def test_rollouts_match_official(golden, sde, mode):
    """The official 100-step loops, fed the recorded noise ``z`` in the recorded order."""
    r = golden("irsde_sde.golden.pt")["rollouts"][mode]
    lq, gt, z = r["LQ"], r["GT"], r["z"]
    x = sde.noise_state(lq, noise=z[0])
    torch.testing.assert_close(x, r["x_T"], atol=ATOL, rtol=0)
    ts = sde.steps_grid()
    assert ts == list(range(100, 0, -1))
    for k, t in enumerate(ts, start=1):
        torch.testing.assert_close(x, r["states_before_step_t100_to_t1"][k - 1], atol=ATOL, rtol=0, msg=f"t={t}")
        eps = sde.noise_from_state(x, gt, lq, t) + 0.05 * torch.tanh(x - lq)  # the fixture's stand-in net
        t_prev = ts[k] if k < len(ts) else 0
        x = sde.step(eps, t, x, lq, mode=mode, noise=z[k], t_prev=t_prev).prev_sample
    torch.testing.assert_close(x, r["output"], atol=ATOL, rtol=0)


class _StandIn(torch.nn.Module):
    """The fixture's analytic network: the exact noise plus ``0.05 tanh(x - mu)``."""

    def __init__(self, sde, gt):
        super().__init__()
        self.sde, self.gt = sde, gt

    def forward(self, x, lq, t, degradation=None, content=None):
        return self.sde.noise_from_state(x, self.gt, lq, int(t)) + 0.05 * torch.tanh(x - lq)


@pytest.mark.parametrize("mode", ["posterior", "sde"])
def test_rollouts_match_official_through_the_public_loop(golden, mode):
    """``daclip_kit.sample`` with ``x_T=`` and the recorded noise reproduces the official loops."""
    import daclip_kit

    r = golden("irsde_sde.golden.pt")["rollouts"][mode]
    sde = daclip_kit.create_sampler("irsde", mode=mode)
    out = daclip_kit.sample(_StandIn(sde, r["GT"]), sde, r["LQ"], x_T=r["x_T"], noise=list(r["z"][1:]))
    torch.testing.assert_close(out, r["output"], atol=ATOL, rtol=0)
    with pytest.raises(ConfigError, match="more tensor"):
        daclip_kit.sample(_StandIn(sde, r["GT"]), sde, r["LQ"], x_T=r["x_T"], noise=list(r["z"]))


@pytest.mark.parametrize("steps", [1, 7, 25, 100])
def test_posterior_with_an_exact_noise_oracle_recovers_the_clean_image(sde, steps):
    gen = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, 8, 8, generator=gen)
    lq = (gt + 0.3 * torch.rand(2, 3, 8, 8, generator=gen)).clamp(0, 1)
    x = sde.noise_state(lq, generator=gen)
    ts = sde.steps_grid(steps)
    assert len(ts) == steps and ts[0] == 100 and ts[-1] >= 1
    for k, t in enumerate(ts):
        eps = sde.noise_from_state(x, gt, lq, t)
        out = sde.step(eps, t, x, lq, generator=gen, t_prev=ts[k + 1] if k + 1 < len(ts) else 0)
        torch.testing.assert_close(out.pred_clean, gt, atol=1e-4, rtol=0)
        x = out.prev_sample
    torch.testing.assert_close(x, gt, atol=1e-4, rtol=0)


def test_strided_posterior_keeps_the_forward_marginals(sde):
    """Stepping t -> s with the true x0 maps N(mu_bar_t, sigma_bar_t^2) onto N(mu_bar_s, sigma_bar_s^2)."""
    t, s = 80, 30
    x0 = torch.tensor(0.7)
    lq = torch.tensor(0.2)
    mean_t = sde.mu_bar(x0, lq, t)
    # posterior mean is affine in x_t: a * (x_t - lq) + b * (x0 - lq) + lq
    at_mean = sde.reverse_optimum_step(mean_t, x0, lq, t, s)
    slope = sde.reverse_optimum_step(mean_t + 1, x0, lq, t, s) - at_mean
    torch.testing.assert_close(at_mean, sde.mu_bar(x0, lq, s), atol=1e-6, rtol=0)
    var = slope ** 2 * sde.sigma_bar(t) ** 2 + sde.reverse_optimum_std(t, s) ** 2
    # one schedule on both sides; the std's factors 1 - A^2, 1 - B^2, 1 - C^2 are all >= 0.4 here, so its exps'
    # and products' roundings stay a few ulps of lam^2, and slope^2 sigma_bar_t^2 (slope = 0.02) adds less
    torch.testing.assert_close(var, sde.sigma_bar(s) ** 2, atol=ulps(sde.max_sigma ** 2, 8), rtol=0)


def test_generator_is_the_only_randomness(sde):
    lq = torch.rand(1, 3, 8, 8)
    eps = torch.randn(1, 3, 8, 8)

    def run(seed, mode="posterior"):
        gen = torch.Generator().manual_seed(seed)
        x = sde.noise_state(lq, generator=gen)
        return sde.step(eps, 50, x, lq, mode=mode, generator=gen).prev_sample

    torch.manual_seed(123)
    a = run(0)
    torch.manual_seed(456)
    assert torch.equal(a, run(0))
    assert not torch.equal(a, run(1))
    x = torch.rand(1, 3, 8, 8)
    ode1 = sde.step(eps, 50, x, lq, mode="ode", generator=torch.Generator().manual_seed(0)).prev_sample
    ode2 = sde.step(eps, 50, x, lq, mode="ode", generator=torch.Generator().manual_seed(9)).prev_sample
    assert torch.equal(ode1, ode2)


def test_ode_step_is_the_half_score_drift(sde):
    x, lq, eps = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    t = 40
    theta, sigma, dt = sde.schedule.thetas[t], sde.schedule.sigmas[t], sde.schedule.dt
    score = -eps / sde.schedule.sigma_bars[t]
    expected = x - (theta * (lq - x) - 0.5 * sigma ** 2 * score) * dt
    torch.testing.assert_close(sde.step(eps, t, x, lq, mode="ode").prev_sample, expected)
    # a skipped ODE step with the same increment as two adjacent ones is consistent to first order
    two = sde.step(eps, t - 1, sde.step(eps, t, x, lq, mode="ode").prev_sample, lq, mode="ode").prev_sample
    one = sde.step(eps, t, x, lq, mode="ode", t_prev=t - 2).prev_sample
    assert (one - two).abs().max() < 0.05 * (x - two).abs().max()


@pytest.mark.parametrize("schedule", ["linear", "constant"])
def test_other_schedules_have_T_plus_one_entries(schedule):
    s = IRSDESampler(IRSDEConfig(schedule=schedule, T=20))
    assert s.schedule.thetas.shape == (21,)
    assert float(s.schedule.thetas_cumsum[0]) == 0
    # dt is chosen so the mean has reverted to eps at T
    assert float(torch.exp(-s.schedule.thetas_cumsum[-1] * s.schedule.dt)) == pytest.approx(0.005, rel=1e-4)


def test_noise_matching_objective_and_errors(sde):
    gen = torch.Generator().manual_seed(3)
    x0, lq = torch.rand(2, 3, 8, 8, generator=gen), torch.rand(2, 3, 8, 8, generator=gen)
    t = sde.random_timesteps(2, generator=gen)
    assert t.shape == (2, 1, 1, 1) and int(t.min()) >= 1 and int(t.max()) <= 100
    xt, noise = sde.forward_noise(x0, lq, t, generator=gen)
    assert float(sde.training_loss(noise, xt, x0, lq, t, objective="noise")) < 1e-5
    # the Euler step with the exact noise is close to, not equal to, the optimal posterior mean
    exact = float(sde.training_loss(noise, xt, x0, lq, t))
    assert exact < 0.2 * float(sde.training_loss(noise + 0.5, xt, x0, lq, t))
    assert float(sde.training_loss(noise + 0.1, xt, x0, lq, t, loss="l2")) > 0
    with pytest.raises(ConfigError, match="mode"):
        sde.step(noise, 5, xt, lq, mode="ddim")
    with pytest.raises(ConfigError, match="t_prev"):
        sde.step(noise, 5, xt, lq, t_prev=5)
    with pytest.raises(ConfigError, match="steps"):
        sde.steps_grid(0)
    with pytest.raises(ConfigError, match="schedule"):
        create_sampler("irsde", schedule="cosine2")


@pytest.mark.parametrize("mode", ["posterior", "sde", "ode"])
@pytest.mark.parametrize("steps", [100, 7])
def test_fused_solver_step_equals_the_step_formulas(mode, steps):
    """The solver's one-kernel update equals IRSDESampler.step to float32 rounding."""
    import daclip_kit

    sde = daclip_kit.create_sampler("irsde", mode=mode)
    solver = sde.solver(steps)
    gen = torch.Generator().manual_seed(3)
    lq = torch.rand(2, 3, 8, 8, generator=gen)
    x = sde.noise_state(lq, generator=gen)
    for k, t in enumerate(sde.steps_grid(steps)):
        eps, z = torch.randn(2, 3, 8, 8, generator=gen), torch.randn(2, 3, 8, 8, generator=gen)
        t_prev = sde.steps_grid(steps)[k + 1] if k + 1 < len(solver.timesteps) else 0
        want = sde.step(eps, t, x, lq, t_prev=t_prev, noise=None if mode == "ode" else z).prev_sample
        got = solver.step(eps, x, lq, lambda like, z=z: z)
        torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5, msg=f"t={t}")
        x = want
