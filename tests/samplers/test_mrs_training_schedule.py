"""The ``mrs`` option ``training_schedule``: the SDE the IR-SDE / DA-CLIP networks were trained with
(cumulative theta without ``theta_0``), checked against hand-derived values; the default stays the
official MRS SDE (its golden runs are in test_mrs_golden.py)."""

from __future__ import annotations

import math

import pytest
import torch

import daclip_kit
from daclip_kit.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("training", [False, True])
def test_alpha_of_the_constant_schedule_by_hand(training):
    # constant theta = 1: theta_bar_t = t (training SDE) or t + 1 (MRS code); dt makes alpha_T = eps,
    # so alpha_t = eps ** (t / T) or eps ** ((t + 1) / (T + 1))
    T, eps = 10, 0.01
    sched = daclip_kit.create_sampler("mrs", T=T, eps=eps, schedule="constant", training_schedule=training).schedule
    for t in (0, 5):
        expected = eps ** (t / T) if training else eps ** ((t + 1) / (T + 1))
        assert float(sched.alpha_array[t]) == pytest.approx(expected, rel=1e-6)
    lam = 50 / 255
    sigma_5 = lam * math.sqrt(1 - (eps ** (5 / T) if training else eps ** (6 / (T + 1))) ** 2)
    assert float(sched.sigma_array[5]) == pytest.approx(sigma_5, rel=1e-6)
    assert (float(sched.sigma_array[0]) == 0.0) is training


def test_training_schedule_is_the_irsde_sampler_marginal():
    mrs = daclip_kit.create_sampler("mrs", training_schedule=True)
    irsde = daclip_kit.create_sampler("irsde")
    for t in (1, 37, 100):
        torch.testing.assert_close(mrs.schedule.sigma_array[t], irsde.sigma_bar(t))
        one = torch.ones(1, 1, 1, 1)
        torch.testing.assert_close(mrs.schedule.alpha_array[t], irsde.mu_bar(one, torch.zeros_like(one), t).reshape(()))


@pytest.mark.parametrize("solver_type,order,parameterization",
                         [("ode", 1, "data"), ("ode", 2, "data"), ("ode", 3, "noise"), ("sde", 2, "data"),
                          ("sde", 1, "noise")])
def test_a_perfect_network_gives_the_clean_image_exactly(solver_type, order, parameterization):
    # with the true noise at every evaluation every run ends on x0 with the training schedule (sigma_0 = 0);
    # the official schedule ends at alpha_0 < 1, i.e. off x0
    torch.manual_seed(0)
    x0, lq = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    errors = {}
    for training in (False, True):
        sampler = daclip_kit.create_sampler("mrs", solver_type=solver_type, order=order,
                                            parameterization=parameterization, training_schedule=training)
        solver = sampler.solver(6)
        x = sampler.noise_state(lq, torch.Generator().manual_seed(1))
        for k, _ in enumerate(solver.timesteps):
            eps = (x - lq - solver.alphas[k] * (x0 - lq)) / solver.sigmas[k]
            x = solver.step(eps, x, lq, draw=torch.randn_like)
        errors[training] = float((x - x0).abs().max())
    assert errors[True] < 1e-5
    assert errors[False] > 1e-3


def test_default_is_the_official_schedule_and_the_switch_is_checked():
    assert daclip_kit.create_sampler("mrs").config.training_schedule is False
    assert float(daclip_kit.create_sampler("mrs").schedule.alpha_array[0]) < 1
    with pytest.raises(ConfigError, match="linear-lambda"):
        daclip_kit.create_sampler("mrs", training_schedule=True, time_schedule="linear-lambda")
