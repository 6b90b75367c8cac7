"""Properties of the ``mrs`` sampler that the official runs cannot cover: every option combination
is checked against closed forms, analytic endpoints, convergence and statistics that a wrong
formula would break."""

from __future__ import annotations

import math

import pytest
import torch
from _tolerance import ulps

import daclip_kit
from daclip_kit.errors import ConfigError
from daclip_kit.samplers.mrs.sampler import MRSampler, dynamic_threshold, step_orders
from daclip_kit.samplers.mrs.schedule import interpolate, max_start_time

pytestmark = pytest.mark.usefixtures("one_thread")

SCHEDULES = ["linspace", "leading", "trailing", "karras-n", "karras-t", "linear-lambda"]
INTEGER_GRIDS = ["linspace", "leading"]  # grids on integer times (for T=100 and 10 steps)


def mrs(**kw) -> MRSampler:
    return daclip_kit.create_sampler("mrs", **kw)


def run(sampler, net, lq, x_T, **kw):
    with torch.no_grad():
        return daclip_kit.sample(net, sampler, lq, x_T=x_T, **kw)


def ode_endpoint(solver, x_T, lq, gt):
    """Where the probability-flow ODE of a perfect network ends: the start noise
    ``eps = (y_T - alpha_0 y_0) / sigma_0`` is carried unchanged to the last grid time."""
    a, s = solver.alphas, solver.sigmas
    eps = (x_T - lq - a[0] * (gt - lq)) / s[0]
    return lq + a[-1] * (gt - lq) + s[-1] * eps


def psnr(a, b):
    return -10 * math.log10(float(((a - b) ** 2).mean()))


# -- perfect network: ODE solvers land on the analytic endpoint -------------------------------------

@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("parameterization", ["data", "noise"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_exact_network_ode_lands_on_the_analytic_endpoint(images, stand_in, schedule, parameterization, order):
    gt, lq, z = images()
    sampler = mrs(order=order, parameterization=parameterization, time_schedule=schedule)
    solver = sampler.solver(10)
    x_T = sampler.noise_state(lq, noise=z)
    out = run(sampler, stand_in(sampler, gt), lq, x_T, solver=solver)
    expected = ode_endpoint(solver, x_T, lq, gt)
    # On integer times the exponential integrator is exact. At fractional times alpha, sigma and
    # lambda are interpolated separately (as in the official code), so lambda is not exactly
    # log(alpha / sigma) there and a small error remains.
    tol = 1e-5 if schedule in INTEGER_GRIDS else 1e-2
    assert float((out - expected).abs().max()) < tol
    if float(solver.grid[-1]) < 1e-3:  # runs that end at t = 0 are within sigma_0 of the clean image
        assert psnr(out, gt) > 45


def test_exact_network_restores_at_T_1000(images, stand_in):
    gt, lq, z = images(seed=4)
    sampler = mrs(T=1000)
    solver = sampler.solver()
    assert solver.timesteps[:2] == (1000.0, 900.0) and len(solver.timesteps) == 10
    x_T = sampler.noise_state(lq, noise=z)
    out = run(sampler, stand_in(sampler, gt), lq, x_T, solver=solver)
    torch.testing.assert_close(out, ode_endpoint(solver, x_T, lq, gt), atol=1e-5, rtol=0)
    assert psnr(out, gt) > 50


# -- closed forms -------------------------------------------------------------------------------------

def test_first_order_data_ode_step_is_the_ddim_closed_form(images):
    """One order-1 step from t=100 to t=0 with an arbitrary network output:
    ``x_t = mu + a_t (x0 - mu) + (s_t / s_s) (x_s - mu - a_s (x0 - mu))``."""
    gt, lq, z = (v.double() for v in images())  # float64 state: the comparison is about the math
    sampler = mrs(order=1)
    x = sampler.noise_state(lq, noise=z)
    sched = sampler.schedule
    a_s, s_s, a_t, s_t = sched.alpha_array[100], sched.sigma_array[100], sched.alpha_array[0], sched.sigma_array[0]
    # an imperfect noise estimate, kept near the true noise: converting it divides by alpha_T = 0.005,
    # so float32 schedule coefficients (as in the official code, e.g. (1 - alpha) / alpha = 199 to
    # 7 digits) limit the agreement to ~1e-5 however the state is stored
    eps = (x - lq - a_s * (gt - lq)) / s_s + 0.01 * torch.randn(
        x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    solver = sampler.solver(1)
    assert solver.grid.tolist() == [100.0, 0.0]
    x0 = (x - lq - s_s * eps) / a_s + lq
    expected = lq + a_t * (x0 - lq) + s_t / s_s * (x - lq - a_s * (x0 - lq))
    # the solvers' float32 coefficients ((1 - a) / a, a_t / a_s, s_t e^h) multiply terms up to
    # (|x| + |lq| + |s_s eps|) / a_s (~600) that cancel to O(1): each rounds (and exp adds) within 3 ulps of that
    tol = ulps((x.abs() + lq.abs() + (s_s * eps).abs()) / a_s, 3)
    got = solver.step(eps, x, lq, draw=None)
    torch.testing.assert_close(got, expected, atol=tol, rtol=0)
    assert float((got - gt).abs().max()) > 1e-3  # the estimate's error is really there
    # the noise parameterisation is the same first-order method (both are DDIM)
    got_noise = mrs(order=1, parameterization="noise").solver(1).step(eps, x, lq, draw=None)
    torch.testing.assert_close(got_noise, expected, atol=tol, rtol=0)
    # the public single step does the same, and reports the data prediction
    one = sampler.step(eps, 100.0, x, lq, t_prev=0.0)
    torch.testing.assert_close(one.prev_sample, got, atol=0, rtol=0)
    torch.testing.assert_close(one.pred_clean, x0, atol=tol, rtol=0)


@pytest.mark.parametrize("solver_type,orders", [("ode", (1, 2, 3)), ("sde", (1, 2))])
def test_parameterizations_and_fit_targets_agree_on_a_perfect_network(images, stand_in, solver_type, orders):
    """A network predicting noise, data or velocity of the same clean image gives one answer, in
    either parameterisation (SDE runs share the recorded noise). Float64 states: converting a noise
    prediction divides by ``alpha_T = 0.005``, which float32 rounding would blur to ~1e-4."""
    gt, lq, z = (v.double() for v in images(seed=2))
    draws = [torch.randn(gt.shape, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
             for k in range(10)]
    ref = None
    # each of the 10 steps multiplies the state by float32 coefficients (a / a_prev, a phi, exp(+-h), and the
    # (1 - a) / a of a noise conversion, damped by the next alpha), rounding ~4 ulps of the state's size
    tol = ulps(lq.abs() + 0.2 * z.abs(), 4 * 10)  # |x_T| <= |lq| + lam |z|, lam = 50 / 255
    for order in orders:
        for parameterization in ("data", "noise"):
            for kind in ("noise", "data", "velocity"):
                sampler = mrs(solver_type=solver_type, order=order, parameterization=parameterization,
                              fit_target=kind)
                x_T = sampler.noise_state(lq, noise=z)
                noise = draws if solver_type == "sde" else None
                out = run(sampler, stand_in(sampler, gt, kind=kind), lq, x_T, steps=10, noise=noise)
                if solver_type == "ode":
                    ref = ode_endpoint(sampler.solver(10), x_T, lq, gt) if ref is None else ref
                    torch.testing.assert_close(out, ref, atol=tol, rtol=0)
                elif parameterization == "data":  # exact posterior sampling: identical paths
                    ref = out if ref is None else ref
                    torch.testing.assert_close(out, ref, atol=tol, rtol=0)
                else:  # noise-prediction SDE steps are not exact: checked for convergence below
                    assert torch.isfinite(out).all()


def test_higher_orders_converge_faster(images, stand_in):
    """With a smooth imperfect network (``x0 = gt + 0.1 tanh(x - mu)``, not time dependent) the
    error against a fine reference falls with the order, at the nominal rate for data prediction."""
    gt, lq, z = images(shape=(1, 3, 8, 8), seed=3)
    for parameterization in ("data", "noise"):
        ref_sampler = mrs(order=3, parameterization=parameterization)
        x_T = ref_sampler.noise_state(lq, noise=z)
        net = stand_in(ref_sampler, gt, bend=0.1, kind="data")
        ref = run(mrs(order=3, parameterization=parameterization, fit_target="data"), net, lq, x_T, steps=100)
        errors = {}
        for order in (1, 2, 3):
            sampler = mrs(order=order, parameterization=parameterization, fit_target="data")
            errors[order] = [float((run(sampler, net, lq, x_T, steps=n) - ref).abs().max()) for n in (25, 50)]
        assert errors[3][1] < errors[2][1] < errors[1][1], errors
        if parameterization == "data":
            for order in (1, 2, 3):
                rate = math.log2(errors[order][0] / errors[order][1])
                assert rate > order - 0.5, (order, rate, errors)


def test_sde_with_a_perfect_network_samples_the_analytic_posterior(images, stand_in):
    """Data-prediction SDE steps sample ``q(x_t | x_s, x_0)`` exactly, so the run ends at
    ``N(mu + a_e y0 + c (y_T - a_T y0), s_e^2 (1 - exp(-2 (lambda_e - lambda_T))))`` with
    ``c = a_T s_e^2 / (a_e s_T^2)``."""
    gt, lq, z = images(shape=(1, 3, 64, 64), seed=5)
    for order in (1, 2):
        sampler = mrs(solver_type="sde", order=order)
        solver = sampler.solver(10)
        x_T = sampler.noise_state(lq, noise=z)
        out = run(sampler, stand_in(sampler, gt), lq, x_T, solver=solver,
                  generator=torch.Generator().manual_seed(order))
        a, s, lam = solver.alphas.double(), solver.sigmas.double(), solver.lambdas.double()
        y0, y_T = (gt - lq).double(), (x_T - lq).double()
        mean = lq.double() + a[-1] * y0 + a[0] * s[-1] ** 2 / (a[-1] * s[0] ** 2) * (y_T - a[0] * y0)
        std = s[-1] * torch.sqrt(1 - torch.exp(-2 * (lam[-1] - lam[0])))
        score = (out.double() - mean) / std
        assert abs(float(score.mean())) < 0.05
        assert abs(float(score.std()) - 1) < 0.05


def test_noise_prediction_sde_converges_as_steps_grow(images, stand_in):
    """Noise-prediction SDE steps are exact only as ``h -> 0`` (their noise variance is
    ``sigma_t^2 (2 e^{2h} - 4 e^h + 3)`` instead of ``sigma_t^2``); with a perfect network they
    approach the clean image as the step count grows (the MRS paper recommends data prediction)."""
    gt, lq, z = images(shape=(1, 3, 32, 32))
    for order, floor in ((1, 45), (2, 40)):
        sampler = mrs(solver_type="sde", parameterization="noise", order=order)
        x_T = sampler.noise_state(lq, noise=z)
        scores = [psnr(run(sampler, stand_in(sampler, gt), lq, x_T, steps=n,
                           generator=torch.Generator().manual_seed(3)), gt) for n in (20, 50, 100)]
        assert scores[0] < scores[1] < scores[2] and scores[2] > floor, (order, scores)


# -- options ----------------------------------------------------------------------------------------

def test_dynamic_threshold_clips_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.rand(3, 8, 8, generator=g),                # inside [0, 1]: unchanged
                     torch.rand(3, 8, 8, generator=g) * 4 - 2,        # s capped at threshold_max
                     torch.rand(3, 8, 8, generator=g) * 2.4 - 1.2])   # 1 < s < threshold_max
    out = dynamic_threshold(x, 0.995, 1.5)
    torch.testing.assert_close(out[0], x[0], atol=0, rtol=0)
    for i in (1, 2):
        s = torch.quantile(x[i].abs().flatten(), 0.995).clamp(1, 1.5)
        torch.testing.assert_close(out[i], x[i].clamp(-s, s) / s, atol=1e-6, rtol=0)
    assert float(out[1].abs().max()) == pytest.approx(1.0)
    assert 1 < float(torch.quantile(x[2].abs().flatten(), 0.995)) < 1.5


def test_thresholding_applies_to_every_data_prediction(images):
    """A data network predicting 3 everywhere: thresholded to 1.5 / 1.5 = 1 before it is used."""
    _, lq, z = images()

    class Constant(torch.nn.Module):
        def forward(self, x, lq, t, degradation=None, content=None):
            return torch.full_like(x, 3.0)

    x_T = lq + z * 0.2
    on = mrs(order=1, fit_target="data", thresholding=True)
    off = mrs(order=1, fit_target="data")
    out_on = run(on, Constant(), lq, x_T, steps=1)
    ones = torch.ones_like(lq)
    torch.testing.assert_close(out_on, off.solver(1).step(ones, x_T, lq, draw=None), atol=1e-6, rtol=0)
    assert not torch.allclose(out_on, run(off, Constant(), lq, x_T, steps=1))
    last = mrs(order=2, fit_target="data", thresholding=True, denoise_last=True)
    torch.testing.assert_close(run(last, Constant(), lq, x_T, steps=3), ones, atol=0, rtol=0)


@pytest.mark.parametrize("parameterization", ["data", "noise"])
@pytest.mark.parametrize("solver_type", ["ode", "sde"])
def test_denoise_last_returns_the_data_prediction(images, stand_in, parameterization, solver_type):
    gt, lq, z = images(seed=6)
    sampler = mrs(denoise_last=True, parameterization=parameterization, solver_type=solver_type)
    plain = mrs(parameterization=parameterization, solver_type=solver_type)
    assert sampler.timesteps(5) == plain.timesteps(5)  # same NFE and times
    x_T = sampler.noise_state(lq, noise=z)
    net = stand_in(sampler, gt, tanh_noise=0.05)
    draws = [torch.randn(gt.shape, generator=torch.Generator().manual_seed(k)) for k in range(4)]
    noise = draws if solver_type == "sde" else None  # the last evaluation draws nothing
    out = run(sampler, net, lq, x_T, steps=5, noise=noise)
    assert net.times == list(plain.timesteps(5))
    # replay the first four steps and convert the fifth output by hand
    solver = plain.solver(5)
    x = x_T
    for k in range(4):
        x = solver.step(net(x, lq, solver.timesteps[k]), x, lq, draw=lambda like, k=k: draws[k])
    eps = net(x, lq, solver.timesteps[4])
    a, s = solver.alphas[4], solver.sigmas[4]
    torch.testing.assert_close(out, (x - lq - s * eps) / a + lq, atol=1e-5, rtol=0)
    # with a perfect network the prediction is the clean image
    exact = run(sampler, stand_in(sampler, gt), lq, x_T, steps=5, noise=noise)
    torch.testing.assert_close(exact, gt, atol=1e-5, rtol=0)


def test_step_orders_follow_the_official_rule():
    assert step_orders(20, 3) == [1, 2] + [3] * 18                   # warm-up, then full order
    assert step_orders(10, 2) == [1] + [2] * 9                        # M = 10: no reduction
    assert step_orders(9, 3) == [1, 2, 3, 3, 3, 3, 2, 1, 3]           # M < 10: min(order, M - i), last full
    assert step_orders(5, 2) == [1, 2, 2, 1, 2]
    assert step_orders(3, 3) == [1, 2, 3]
    assert step_orders(2, 3) == [1, 2]                               # fewer steps than the order
    assert step_orders(1, 2) == [1]
    assert mrs(order=3).solver(9).orders == step_orders(9, 3)


@pytest.mark.parametrize("order,steps", [(2, 1), (3, 2), (3, 3)])
def test_runs_shorter_than_the_order_work(images, stand_in, order, steps):
    gt, lq, z = (v.double() for v in images())
    sampler = mrs(order=order)
    x_T = sampler.noise_state(lq, noise=z)
    net = stand_in(sampler, gt)
    out = run(sampler, net, lq, x_T, steps=steps)
    assert len(net.times) == steps
    torch.testing.assert_close(out, ode_endpoint(sampler.solver(steps), x_T, lq, gt), atol=1e-5, rtol=0)


# -- runs are independent -------------------------------------------------------------------------------

def test_batch_of_two_equals_two_single_runs(images, stand_in):
    gt, lq, z = images(shape=(2, 3, 12, 20), seed=7)
    draws = [torch.randn(gt.shape, generator=torch.Generator().manual_seed(k)) for k in range(6)]
    for kw in ({"order": 3, "thresholding": True}, {"solver_type": "sde", "order": 2}):
        sampler = mrs(**kw)
        noise = draws if kw.get("solver_type") == "sde" else None
        both = run(sampler, stand_in(sampler, gt, tanh_noise=0.05), lq, lq + 0.2 * z, steps=6, noise=noise)
        for b in range(2):
            part = slice(b, b + 1)
            one = run(sampler, stand_in(sampler, gt[part], tanh_noise=0.05), lq[part], lq[part] + 0.2 * z[part],
                      steps=6, noise=None if noise is None else [d[part] for d in noise])
            torch.testing.assert_close(both[b:b + 1], one, atol=1e-6, rtol=0)


def test_runs_do_not_share_history(images, stand_in):
    gt_a, lq_a, z_a = images(seed=8)
    gt_b, lq_b, z_b = images(seed=9)
    sampler = mrs(order=3)
    net_a = stand_in(sampler, gt_a, tanh_noise=0.05)
    net_b = stand_in(sampler, gt_b, tanh_noise=0.05)
    xa, xb = sampler.noise_state(lq_a, noise=z_a), sampler.noise_state(lq_b, noise=z_b)
    first = run(sampler, net_a, lq_a, xa, steps=7)
    other = run(sampler, net_b, lq_b, xb, steps=7)
    assert torch.equal(run(sampler, net_a, lq_a, xa, steps=7), first)
    # two solvers stepped alternately give the same results as one after the other
    sa, sb = sampler.solver(7), sampler.solver(7)
    x1, x2 = xa, xb
    for t1, t2 in zip(sa.timesteps, sb.timesteps, strict=True):
        x1 = sa.step(net_a(x1, lq_a, t1), x1, lq_a, draw=None)
        x2 = sb.step(net_b(x2, lq_b, t2), x2, lq_b, draw=None)
    assert torch.equal(x1, first) and torch.equal(x2, other)
    with pytest.raises(ConfigError, match="new solver"):
        sa.step(torch.zeros_like(x1), x1, lq_a, draw=None)


@pytest.mark.parametrize("target", ["noise", "data"])
@pytest.mark.parametrize("denoise_last", [False, True])
def test_history_keeps_a_copy_of_a_reused_output_buffer(images, stand_in, target, denoise_last):
    """Under CUDA graphs the network's output is one static buffer that the next replay rewrites;
    the multistep history (which holds the output itself when ``fit_target`` is what the solver
    integrates) must keep its own copy, and so must the returned image."""
    gt, lq, z = images(seed=11)
    sampler = mrs(order=3, parameterization=target, fit_target=target, denoise_last=denoise_last)
    net = stand_in(sampler, gt, tanh_noise=0.05, bend=0.1, kind=target)
    x_T = sampler.noise_state(lq, noise=z)
    expected = run(sampler, net, lq, x_T, steps=6)
    static = torch.empty_like(x_T)

    def replayed(x, lq_, t, **kw):  # what a captured graph returns: the same tensor, rewritten
        static.copy_(net(x, lq_, t, **kw))
        return static

    got = run(sampler, replayed, lq, x_T, steps=6)
    assert torch.equal(got, expected)
    static.fill_(float("nan"))  # the next replay (of another run) must not reach a returned image
    assert torch.equal(got, expected)


def test_odd_sizes_and_a_real_network():
    """A tiny random DA-CLIP U-Net (padded to its size divisor by ``sample``) on a 13x19 image."""
    torch.manual_seed(0)
    net = daclip_kit.create_backbone("irsde-unet", nf=32, ch_mult=(1, 1), context_dim=0,
                                     use_degra_context=False, use_image_context=False).eval()
    lq = torch.rand(1, 3, 13, 19, generator=torch.Generator().manual_seed(0))
    for sampler in (mrs(), mrs(solver_type="sde", order=1, time_schedule="karras-n")):
        with torch.no_grad():
            out = daclip_kit.sample(net, sampler, lq, steps=3, generator=torch.Generator().manual_seed(1))
        assert out.shape == lq.shape and torch.isfinite(out).all()


def test_float64_inputs_stay_float64(images, stand_in):
    gt, lq, z = images()
    sampler = mrs(solver_type="sde")
    out = run(sampler, stand_in(sampler, gt.double()), lq.double(), sampler.noise_state(lq.double(), noise=z.double()),
              steps=4, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.float64


# -- time grids ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("steps", [1, 5, 10, 20])
def test_time_grids(schedule, steps):
    sampler = mrs(time_schedule=schedule)
    grid = sampler.time_grid(steps)
    timesteps = sampler.timesteps(steps)
    assert grid.dtype == torch.float32 and timesteps == tuple(grid[:-1].tolist())
    assert len(timesteps) == steps and bool((grid[1:] < grid[:-1]).all())
    sched = sampler.schedule
    start, end = float(grid[0]), float(grid[-1])
    if schedule == "leading":
        stride = 100 // (steps + 1)
        assert grid.tolist() == [float(k * stride) for k in range(steps, -1, -1)]
    else:
        assert start == pytest.approx(100.0, abs=1e-3)
    if schedule == "trailing":       # ends one stride above 0 (official); stride = T / (steps + 1)
        assert end == pytest.approx(100 / (steps + 1), rel=1e-5)
        torch.testing.assert_close(grid[:-1] - grid[1:], torch.full((steps,), 100 / (steps + 1)), atol=1e-4, rtol=0)
    elif schedule == "karras-t":     # ends at t = 1; t^(1/rho) evenly spaced
        assert end == pytest.approx(1.0, abs=1e-5)
        root = grid.double() ** (1 / 7)
        torch.testing.assert_close(root.diff(), root.diff()[:1].expand(steps), atol=1e-5, rtol=0)
    else:
        assert end == pytest.approx(0.0, abs=1e-3)
    if schedule == "linspace":
        torch.testing.assert_close(grid, torch.linspace(100, 0, steps + 1), atol=1e-5, rtol=0)
    if schedule == "karras-n" and steps > 1:  # (sigma/alpha)^(1/rho) evenly spaced
        ratio = sched.sigma_array / sched.alpha_array
        root = interpolate(grid, sched.t_array, ratio).double() ** (1 / 7)
        torch.testing.assert_close(root.diff(), root.diff()[:1].expand(steps), atol=2e-3, rtol=0)
    if schedule == "linear-lambda":
        lam = interpolate(grid, sched.t_array, sched.lambda_array).double()
        torch.testing.assert_close(lam.diff(), lam.diff()[:1].expand(steps), atol=2e-2, rtol=0)


def test_lambda_min_cuts_the_start():
    sampler = mrs(lambda_min=-2.0)
    lam = sampler.schedule.lambda_array
    t_max = max_start_time(sampler.schedule, -2.0)
    assert t_max < 100 and float(lam[t_max]) >= -2.0 > float(lam[t_max + 1])
    assert sampler.timesteps(4)[0] == float(t_max)
    ll = mrs(lambda_min=-2.0, time_schedule="linear-lambda").time_grid(4)
    assert float(interpolate(ll[:1], sampler.schedule.t_array, lam)) == pytest.approx(-2.0, abs=0.05)
    assert max_start_time(sampler.schedule, -math.inf) == 100
    assert mrs(lambda_min=-math.inf).timesteps(2) == (100.0, 50.0)


def test_leading_offset_and_too_many_steps():
    assert mrs(time_schedule="leading", timestep_offset=1).timesteps(3) == (76.0, 51.0, 26.0)
    with pytest.raises(ConfigError, match=r"time_schedule='leading'.*not strictly decreasing"):
        mrs(time_schedule="leading").solver(100)


def test_interpolate_extrapolates_linearly():
    xp = torch.tensor([0.0, 1.0, 3.0])
    yp = torch.tensor([0.0, 2.0, 3.0])
    x = torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 5.0])
    torch.testing.assert_close(interpolate(x, xp, yp), torch.tensor([-2.0, 0.0, 1.0, 2.0, 2.5, 3.0, 4.0]))


# -- config ---------------------------------------------------------------------------------------------

def test_pasted_option_file_sections():
    sde = {"max_sigma": 50, "T": 100, "schedule": "cosine", "eps": 0.005, "algorithm": "mrsampler"}
    sampler_opt = {"num_sample_steps": 20, "solver_type": "ode", "parameterization": "data", "order": 2,
                   "fit_target": "noise", "lambda_min": -5.0, "time_schedule": "linspace", "thresholding": False,
                   "threshold_ratio": 0.995, "threshold_max": 1.5, "denoise_last": False}
    sampler = daclip_kit.create_sampler("mrs", **sde, **sampler_opt)
    assert sampler.default_steps == 20 and len(sampler.timesteps()) == 20
    defaults = mrs()
    assert defaults.default_steps == 10
    c = defaults.config
    assert (c.solver_type, c.parameterization, c.order, c.lambda_min, c.time_schedule, c.fit_target) == (
        "ode", "data", 2, -5.0, "linspace", "noise")
    assert defaults.max_sigma == pytest.approx(50 / 255)


@pytest.mark.parametrize("kwargs,key", [
    ({"order": 3, "solver_type": "sde"}, "order"),
    ({"order": 4}, "order"),
    ({"order": 0}, "order"),
    ({"solver_type": "euler"}, "solver_type"),
    ({"parameterization": "velocity"}, "parameterization"),
    ({"fit_target": "score"}, "fit_target"),
    ({"time_schedule": "cosine"}, "time_schedule"),
    ({"thresholding": True, "parameterization": "noise"}, "thresholding"),
    ({"threshold_ratio": 0.0}, "threshold_ratio"),
    ({"threshold_max": 0.5}, "threshold_max"),
    ({"timestep_offset": 2}, "timestep_offset"),
    ({"rho": 0.0}, "rho"),
    ({"num_sample_steps": 0}, "num_sample_steps"),
    ({"max_sigma": 0}, "max_sigma"),
    ({"eps": 1.5}, "eps"),
    ({"schedule": "sigmoid"}, "schedule"),
    ({"algorithm": "heun"}, "algorithm"),
    ({"nfe": 10}, "nfe"),
])
def test_bad_options_name_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        mrs(**kwargs)


def test_bad_steps():
    with pytest.raises(ConfigError, match="steps"):
        mrs().solver(0)
    with pytest.raises(ConfigError, match="t_prev"):
        mrs().step(torch.zeros(1, 3, 4, 4), 50.0, torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), t_prev=60.0)
