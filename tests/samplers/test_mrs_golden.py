"""The ``mrs`` sampler reproduces the official MR Sampler runs recorded in ``mrs_sampler.golden.pt``
(three cases) and ``mrs_sampler_options.golden.pt`` (twenty more covering the whole option set).

Each case is an official ``MRSampler.sampling`` run (grrrute/mr-sampler) with the fixture's analytic
stand-in network; here it runs through the public loop ``daclip_kit.sample``.
"""

from __future__ import annotations

import pytest
import torch

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
ATOL = 1e-5

pytestmark = pytest.mark.usefixtures("one_thread")


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
    for key in ("alpha_array", "sigma_array", "lambda_array"):
        got = getattr(sampler.schedule, key)
        assert got.shape == ref[key].shape == (101,)
        torch.testing.assert_close(got, ref[key], atol=1e-7, rtol=0, msg=key)
    solver = sampler.solver()
    assert solver.grid.tolist() == ref["timesteps"].tolist()  # the same float32 values
    for key in ("alphas", "sigmas", "lambdas"):
        torch.testing.assert_close(getattr(solver, key), ref[key], atol=1e-7, rtol=0, msg=key)
    # the brief's closed forms of the same arrays
    alpha = sampler.schedule.alpha_array
    torch.testing.assert_close(sampler.schedule.sigma_array, sampler.max_sigma * torch.sqrt(1 - alpha ** 2),
                               atol=1e-6, rtol=0)
    assert float(alpha[-1]) == pytest.approx(case["config"]["sde"]["eps"], rel=1e-5)
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
    torch.testing.assert_close(sampler.noise_state(inp["LQ"], noise=inp["z0"]), inp["x_T"], atol=1e-7, rtol=0)
    net = stand_in(sampler, inp["GT"], **_stand_in_options(case["config"]["sampler"].get("fit_target", "noise")))
    with torch.no_grad():
        out = daclip_kit.sample(net, sampler, inp["LQ"], x_T=inp["x_T"], noise=list(inp["noise_draws"]))
    out = out.clamp(0, 1)
    err = float((out - case["output"]).abs().max())
    assert err <= ATOL, f"{name}: max abs error {err:.3g}"
    # the network was called at the official float times, in order, NFE = num_sample_steps
    assert net.times == case["network_times"].tolist()
    assert len(net.times) == case["config"]["sampler"]["num_sample_steps"]
    assert all(isinstance(t, float) for t in net.times)
    assert sampler.timesteps() == tuple(case["network_times"].tolist())
    psnr = -10 * torch.log10(((out - inp["GT"]) ** 2).mean())
    assert float(psnr) == pytest.approx(float(case["psnr_output_vs_gt"]), abs=0.01)


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
