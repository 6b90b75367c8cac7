"""Training a clean-predicting IR-SDE network (``network.prediction = "clean"``, ``objective =
"clean"``), and the refusals when the objective, the network and the weights disagree."""

from __future__ import annotations

import math

import pytest
import torch
from _train_testutil import irsde_config

import daclip_kit
from daclip_kit.errors import ConfigError
from daclip_kit.train.restoration import RestorationTask, train_restoration

pytestmark = pytest.mark.usefixtures("one_thread")
CLEAN = {"network": {"prediction": "clean"}, "objective": "clean", "loss": "l2"}


def test_clean_objective_regresses_the_ground_truth(root, daclip, tmp_path):
    cfg = irsde_config(root, daclip, tmp_path / "run", **CLEAN)
    torch.manual_seed(0)
    task = RestorationTask(cfg, torch.device("cpu"), None)
    items = [task.dataset[i] for i in range(2)]
    batch = {k: torch.stack([item[k] for item in items]) for k in ("lq", "gt")}
    batch["seed"] = torch.tensor([item["seed"] for item in items])
    loss, _ = task.loss(batch)
    # the loss is the network output's distance to GT, whatever the step and noise drawn
    t, noise = task.draws(batch["seed"], tuple(batch["gt"].shape[1:]))
    x_t, _ = task.sampler.forward_noise(batch["gt"], batch["lq"], t, noise=noise)
    cond = task.condition(batch["lq"])
    out = task.net(x_t, batch["lq"], t.reshape(-1), degradation=cond.degradation, content=cond.content)
    assert torch.allclose(loss, torch.nn.functional.mse_loss(out, batch["gt"]), rtol=1e-5)


def test_a_clean_run_saves_a_clean_network_that_restores(root, daclip, tmp_path):
    result = train_restoration(irsde_config(root, daclip, tmp_path / "run", **CLEAN))
    assert result.step == 3 and all(math.isfinite(r["loss"]) for r in result.history)
    folder = tmp_path / "run" / "checkpoints" / "step-00000003" / "network-ema"
    net = daclip_kit.load_network(None, folder)
    assert net.prediction == "clean"
    lq = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        out = daclip_kit.sample(net, daclip_kit.create_sampler("mrs"), lq, steps=3,
                                generator=torch.Generator().manual_seed(0), check_finite=True)
    assert out.shape == lq.shape


@pytest.mark.parametrize("top, fix", [
    ({"objective": "clean"}, 'set network.prediction = "clean"'),
    ({"network": {"prediction": "clean"}, "objective": "ml"}, 'use objective = "clean"')])
def test_an_objective_that_does_not_fit_the_network_is_refused(root, daclip, tmp_path, top, fix):
    with pytest.raises(ConfigError, match=fix):
        RestorationTask(irsde_config(root, daclip, tmp_path / "run", **top), torch.device("cpu"), None)


def test_continuing_clean_weights_as_a_noise_network_is_refused(root, daclip, tmp_path):
    train_restoration(irsde_config(root, daclip, tmp_path / "run", **CLEAN))
    cfg = irsde_config(root, daclip, tmp_path / "next", init_from=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r'predicts the clean .* set network\.prediction = "clean"'):
        RestorationTask(cfg, torch.device("cpu"), None)
