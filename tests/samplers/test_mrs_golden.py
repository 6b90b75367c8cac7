"""The ``mrs`` sampler reproduces the official MR Sampler runs recorded in ``mrs_sampler.golden.pt``
(three cases) and ``mrs_sampler_options.golden.pt`` (twenty more covering the whole option set).

Each case is an official ``MRSampler.sampling`` run (grrrute/mr-sampler) with the fixture's analytic
stand-in network; here it runs through the public loop ``daclip_kit.sample``.
"""

from __future__ import annotations

import math

import pytest
import torch
from _tolerance import EPS32, PARITY_ATOL, assert_within, ulps

import daclip_kit

CASES = ["ode_data_2_nfe20", "sde_data_2_nfe10", "ode_noise_1_nfe10"]
OPTION_CASES = [
    "ode_data_1_karras_t_5_rho5",
    "ode_data_2_denoise_last_10",
    "ode_data_2_fit_data_10",
    "ode_data_2_fit_velocity_10",
    "ode_data_2_karras_n_10",
    "ode_data_2_lambda_min_-3_10",
    "ode_data_2_linear_lambda_20",
    "ode_data_2_max_sigma_70_8",
    "ode_data_2_thresholding_10",
    "ode_data_2_trailing_10",
    "ode_data_3_leading_12_offset1",
    "ode_data_3_linspace_10",
    "ode_noise_2_linspace_10",
    "ode_noise_3_karras_n_20",
    "sde_data_1_linspace_10",
    "sde_data_2_T_200_15",
    "sde_data_2_karras_n_10",
    "sde_noise_1_leading_10",
    "sde_noise_2_fit_velocity_karras_t_10",
    "sde_noise_2_linspace_20",
]
ATOL = PARITY_ATOL
# cos, exp and log are faithful on both sides (within an ulp each, so up to 2 apart); theta_t = 1 - abar_t
# carries that as ulps of 1, theta_bar sums it along t, and alpha, 1 - exp(-2 theta_bar dt) and the logs
# inherit up to ~10 ulps of their operands' scale (one side's cos/exp/log off by an ulp gives 3 to 5)
N_SCHEDULE = 10

pytestmark = pytest.mark.usefixtures("one_thread")


def _schedule_bounds(ref: dict, lam: float, n: float = N_SCHEDULE) -> dict[str, torch.Tensor]:
    """Per-step bounds on |ours - official| for the ``(T + 1,)`` schedule arrays ``ref`` (official values):

    * ``alpha = exp(-a)``, ``a = theta_bar dt``: ``n`` ulps of ``alpha (1 + a)`` (exp's own, and its argument's);
    * ``sigma ** 2 = lam ** 2 (1 - exp(-2a))`` (compared squared): ``n`` ulps of ``lam ** 2``, since the
      subtraction cancels near ``t = 0`` and leaves ulps of its operand 1, not of the small result;
    * ``lambda = log(alpha) - log(sigma)``: the relative errors of ``alpha`` and ``sigma`` (``n`` ulps of
      ``lam ** 2 / (2 sigma ** 2)``: 3.9e3 ulps at ``t = 0`` of the default SDE) plus ``n`` ulps of the logs.
    """
    alpha, sigma = ref["alpha_array"].double(), ref["sigma_array"].double()
    a, log_sigma = -alpha.log(), sigma.log().abs()
    return {
        "alpha_array": n * EPS32 * alpha * (1 + a),
        "sigma_array": torch.full_like(sigma, ulps(lam ** 2, n)),
        "lambda_array": n * EPS32 * (1 + 2 * a + log_sigma + lam ** 2 / (2 * sigma ** 2)),
    }


def _time_bounds(case: dict, ours: torch.Tensor) -> torch.Tensor:
    """Bounds on |ours - official| for each of ``case``'s network times (``ours``: ours, float64).

    * linspace and leading grids of integer times take exact steps: exact (where either side is an integer).
    * Other grids that do not read the schedule (linspace, leading, trailing, karras-t) are a few rounded
      operations on exact inputs: 24 ulps of the time (karras-t raises a base in [1, 2], off by ~3 ulps when
      linspace's ramp is vectorised differently, to ``rho <= 7``, then pow adds its own).
    * karras-n and linear-lambda invert ``lambda(t)`` (karras-n spaces ``sigma / alpha = exp(-lambda)``): a
      time moves by the error of its level (the grid's ends are ``lambda_0`` and ``lambda_T``, cancelling at
      ``t = 0``, see :func:`_schedule_bounds`) and of ``lambda`` there, over ``lambda``'s slope on that step.
    """
    times = case["network_times"].double()
    time_schedule = case["config"]["sampler"]["time_schedule"]
    arithmetic = 24 * EPS32 * times.abs()
    if time_schedule in ("linspace", "leading"):
        integer = (times == times.round()) | (ours == ours.round())
        return torch.where(integer, torch.zeros_like(times), arithmetic)
    if time_schedule not in ("karras-n", "linear-lambda"):
        return arithmetic
    ref = case["schedule"]
    d_lambda = _schedule_bounds(ref, case["config"]["sde"]["max_sigma"] / 255)["lambda_array"]
    lam = ref["alpha_array"].double().log() - ref["sigma_array"].double().log()
    k = times.floor().long().clamp(0, lam.numel() - 2)  # the step each time falls in
    slope = 1 - torch.exp(-(lam[k] - lam[k + 1]).abs())  # d lambda / dt there, lowered for karras-n's linear ratio
    level = torch.maximum(d_lambda[0], d_lambda[-1]) + ulps(1.0, 24)
    return (level + torch.maximum(d_lambda[k], d_lambda[k + 1])) / slope + arithmetic


def _sampler(case):
    cfg = case["config"]
    return daclip_kit.create_sampler("mrs", **cfg["sde"], **cfg["sampler"])


def test_fixture_holds_the_three_cases(mrs_golden):
    assert sorted(mrs_golden) == sorted(CASES)


@pytest.mark.parametrize("name", CASES)
def test_schedule_and_grid_match_official(mrs_golden, name):
    case = mrs_golden[name]
    sampler = _sampler(case)
    ref = case["schedule"]
    bounds = _schedule_bounds(ref, sampler.schedule.lam)

    def check(got, want, bound, key):
        power = 2 if key in ("sigma_array", "sigmas") else 1  # sigma is compared squared (see _schedule_bounds)
        assert_within(got.double() ** power, want.double() ** power, bound, key)

    for key in ("alpha_array", "sigma_array", "lambda_array"):
        got = getattr(sampler.schedule, key)
        assert got.shape == ref[key].shape == (101,)
        check(got, ref[key], bounds[key], key)
    solver = sampler.solver()
    assert solver.grid.tolist() == ref["timesteps"].tolist()  # integer times (linspace of 0..100): exact
    steps = solver.grid.long()
    for key, array in (("alphas", "alpha_array"), ("sigmas", "sigma_array"), ("lambdas", "lambda_array")):
        check(getattr(solver, key), ref[key], bounds[array][steps], key)  # the arrays at those integer times
    # the brief's closed forms of the same arrays
    alpha = sampler.schedule.alpha_array.double()
    # sigma from exp(-2a), this from exp(-a) squared (in float64): exp's ulp on each side (two once squared)
    # and sigma's own roundings: 4 ulps of lam ** 2
    assert_within(sampler.schedule.sigma_array.double() ** 2, sampler.max_sigma ** 2 * (1 - alpha ** 2),
                  ulps(sampler.max_sigma ** 2, 4), "sigma ** 2 = lam ** 2 (1 - alpha ** 2)")
    # alpha_T = exp(-theta_bar_T dt) with dt = -log(eps) / theta_bar_T: three roundings of the argument
    # (1.5 ulps of 5.3, so 8 ulps of alpha_T) and exp's own: within 10
    assert float(alpha[-1]) == pytest.approx(case["config"]["sde"]["eps"], rel=10 * EPS32)
    assert float(alpha[0]) < 1  # theta_0 is not subtracted


def _stand_in_options(fit_target: str) -> dict:
    """The fixture's stand-in for each fit target: ``GT + 0.05 tanh(x - mu)`` as the data, the exact
    noise plus ``0.05 tanh(x - mu)`` as the noise, and the velocity built from that noise."""
    if fit_target == "data":
        return {"kind": "data", "bend": 0.05}
    return {"kind": fit_target, "tanh_noise": 0.05}


def _check_run(case, stand_in, name):
    sampler = _sampler(case)
    inp = case["inputs"]
    # LQ + max_sigma z: a product and a sum, each rounded once, on both sides
    torch.testing.assert_close(sampler.noise_state(inp["LQ"], noise=inp["z0"]), inp["x_T"],
                               atol=ulps(inp["x_T"], 2), rtol=0)
    net = stand_in(sampler, inp["GT"], **_stand_in_options(case["config"]["sampler"].get("fit_target", "noise")))
    with torch.no_grad():
        out = daclip_kit.sample(net, sampler, inp["LQ"], x_T=inp["x_T"], noise=list(inp["noise_draws"]))
    out = out.clamp(0, 1)
    err = float((out - case["output"]).abs().max())
    assert err <= ATOL, f"{name}: max abs error {err:.3g}"
    # the network was called at the official float times, in order, NFE = num_sample_steps
    ours = torch.tensor(net.times, dtype=torch.float64)
    assert_within(ours, case["network_times"], _time_bounds(case, ours), f"{name}: times")
    assert len(net.times) == case["config"]["sampler"]["num_sample_steps"]
    assert all(isinstance(t, float) for t in net.times)
    assert sampler.timesteps() == tuple(net.times)
    psnr = float(-10 * torch.log10(((out - inp["GT"]) ** 2).mean()))
    want = float(case["psnr_output_vs_gt"])
    # |out - official| <= ATOL moves the RMSE to GT by at most ATOL; float32 mean and log10: a few ulps
    assert psnr == pytest.approx(want, abs=20 * math.log10(1 + ATOL / 10 ** (-want / 20)) + ulps(want, 8))


@pytest.mark.parametrize("name", CASES)
def test_run_matches_official(mrs_golden, stand_in, name):
    _check_run(mrs_golden[name], stand_in, name)


def test_options_fixture_covers_the_option_set(mrs_options_golden):
    """The twenty cases span every option value the official sampler has."""
    assert sorted(mrs_options_golden) == OPTION_CASES
    samplers = [case["config"]["sampler"] for case in mrs_options_golden.values()]
    sdes = [case["config"]["sde"] for case in mrs_options_golden.values()]
    seen = {key: {s[key] for s in samplers} for key in
            ("order", "parameterization", "fit_target", "time_schedule", "solver_type", "thresholding",
             "denoise_last")}
    assert seen["order"] == {1, 2, 3}
    assert seen["parameterization"] == {"data", "noise"}
    assert seen["fit_target"] == {"noise", "data", "velocity"}
    assert seen["time_schedule"] == {"linspace", "leading", "trailing", "karras-n", "karras-t", "linear-lambda"}
    assert seen["solver_type"] == {"ode", "sde"}
    assert seen["thresholding"] == seen["denoise_last"] == {True, False}
    assert {s["lambda_min"] for s in samplers} > {-5.0}
    assert {d["max_sigma"] for d in sdes} > {50} and {d["T"] for d in sdes} > {100}
    shapes = {tuple(case["inputs"]["LQ"].shape) for case in mrs_options_golden.values()}
    assert {(1, 3, 7, 9), (1, 3, 9, 7), (2, 3, 8, 8)} <= shapes


@pytest.mark.parametrize("name", OPTION_CASES)
def test_option_case_matches_official(mrs_options_golden, stand_in, name):
    """Each option case matches the official output to 1e-5 and calls the network at the official times."""
    _check_run(mrs_options_golden[name], stand_in, name)


def test_recorded_noise_count_must_match(mrs_golden, stand_in):
    """The SDE case draws exactly one normal sample per step, like the official code."""
    case = mrs_golden["sde_data_2_nfe10"]
    sampler = _sampler(case)
    inp = case["inputs"]
    assert len(inp["noise_draws"]) == 10
    net = stand_in(sampler, inp["GT"], tanh_noise=0.05)
    with pytest.raises(daclip_kit.errors.ConfigError, match="needs more"):
        daclip_kit.sample(net, sampler, inp["LQ"], x_T=inp["x_T"], noise=list(inp["noise_draws"])[:-1])
    with pytest.raises(daclip_kit.errors.ConfigError, match="more tensor"):
        daclip_kit.sample(net, sampler, inp["LQ"], x_T=inp["x_T"], noise=list(inp["noise_draws"]) * 2)
