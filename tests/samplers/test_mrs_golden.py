"""The ``mrs`` sampler reproduces the official MR Sampler runs recorded in ``mrs_sampler.golden.pt``.

Each case is an official ``MRSampler.sampling`` run (grrrute/mr-sampler) with the fixture's analytic
stand-in network; here it runs through the public loop ``daclip_kit.sample``.
"""

from __future__ import annotations

import pytest
import torch

import daclip_kit

CASES = ["ode_data_2_nfe20", "sde_data_2_nfe10", "ode_noise_1_nfe10"]
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


@pytest.mark.parametrize("name", CASES)
def test_run_matches_official(mrs_golden, stand_in, name):
    case = mrs_golden[name]
    sampler = _sampler(case)
    inp = case["inputs"]
    torch.testing.assert_close(sampler.noise_state(inp["LQ"], noise=inp["z0"]), inp["x_T"], atol=1e-7, rtol=0)
    net = stand_in(sampler, inp["GT"], tanh_noise=0.05)
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
