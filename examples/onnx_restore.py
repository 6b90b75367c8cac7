"""Restore an image with the exported DA-CLIP encoder and IR-SDE denoiser: ONNX Runtime and NumPy
only (torch is never imported).

Export the two graphs first (random weights without ``--weights``; the official ones:
``--weights daclip-vit-b-32`` and ``--weights universal-ir``)::

    daclip-kit export daclip --weights daclip-vit-b-32 -o daclip.onnx
    daclip-kit export irsde-unet --weights universal-ir -o unet.onnx
    python examples/onnx_restore.py lq.png --encoder daclip.onnx --denoiser unet.onnx -o restored.png

The sampler is the one the denoiser's metadata records, the one ``daclip-kit restore --weights``
runs the same weights with: ``irsde`` (the IR-SDE posterior, reverse SDE or probability-flow ODE on
integer steps; a plain model's) or ``mrs`` (the MR Sampler with every setting; a distilled
student's K steps on its training schedule), rebuilt from the ``sampler``, ``sde`` and
``mr_schedule`` metadata. ``--sampler`` runs the other one on the same SDE, ``--steps`` and
``--order`` change the run. ``--noise FILE.npy`` takes the start noise (and a stochastic sampler's
draws) from the same file as ``daclip-kit restore --noise``; the two then agree within 1e-4
(``docs/export.md``). ``-o`` ending in ``.npy`` saves the float ``(1, 3, H, W)`` result instead of
a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

PREFIX = "daclip_kit."


def session(path: str | Path, threads: int = 0) -> ort.InferenceSession:
    """An ONNX Runtime CPU session (``threads`` 0: ONNX Runtime's default)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def metadata(sess: ort.InferenceSession) -> dict:
    """The ``daclip_kit.*`` metadata of an exported graph, JSON values decoded."""
    out = {}
    for key, value in sess.get_modelmeta().custom_metadata_map.items():
        if key.startswith(PREFIX):
            try:
                out[key[len(PREFIX):]] = json.loads(value)
            except json.JSONDecodeError:
                out[key[len(PREFIX):]] = value
    return out


def read_image(path: str | Path) -> np.ndarray:
    """``(1, 3, H, W)`` float32 RGB in [0, 1]."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
    return rgb.transpose(2, 0, 1)[None]


def clip_pixels(image: np.ndarray, pre: dict) -> np.ndarray:
    """The encoder's input: the official CLIP preprocessing of a ``(1, 3, H, W)`` image in [0, 1]
    (uint8 by truncation, Pillow bicubic resize of the shorter side, centre crop, OpenAI
    normalisation), ``(1, 3, S, S)`` float32."""
    size = int(pre["image_size"])
    u8 = (image[0].transpose(1, 2, 0) * np.float32(255)).astype(np.uint8)
    im = Image.fromarray(u8)
    w, h = im.size
    if min(w, h) != size:
        new = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
        im = im.resize(new, Image.BICUBIC)
    w, h = im.size
    top, left = round((h - size) / 2.0), round((w - size) / 2.0)
    im = im.crop((left, top, left + size, top + size))
    x = np.asarray(im, dtype=np.float32) / np.float32(255)
    x = (x - np.float32(pre["mean"])) / np.float32(pre["std"])
    return x.transpose(2, 0, 1)[None].astype(np.float32)


# -- the settings of a run: the recorded sampler, or another one on the same SDE -------------------

#: The samplers this example implements.
SAMPLERS = ("irsde", "mrs")
#: The SDE settings every sampler shares (kept when another sampler is asked for, as ``restore --sampler`` does).
SDE_KEYS = ("max_sigma", "T", "schedule", "eps")
#: The ``mrs`` defaults (daclip-kit's ``MRSConfig``), for a run asked for on another sampler's SDE.
MRS_DEFAULTS = {"num_sample_steps": None, "solver_type": "ode", "parameterization": "data", "order": 2,
                "fit_target": "noise", "lambda_min": -5.0, "time_schedule": "linspace", "timestep_offset": 0,
                "rho": 7.0, "thresholding": False, "threshold_ratio": 0.995, "threshold_max": 1.5,
                "denoise_last": False, "training_schedule": False}


def run_settings(meta: dict, sampler: str | None = None, order: int | None = None) -> tuple[str, dict]:
    """``(name, config)`` of the run: the sampler the metadata records (what ``daclip-kit restore``
    runs the network with), or ``sampler`` on the recorded SDE with its defaults; ``order``
    replaces the ``mrs`` solver order."""
    recorded = meta["sampler"]
    name = sampler or recorded["name"]
    if name not in SAMPLERS:
        raise SystemExit(f"error: the denoiser's sampler is {name!r}; this example implements "
                         f"{' and '.join(SAMPLERS)}. Pass --sampler mrs or --sampler irsde to run it with one of "
                         "them on the same SDE.")
    if name == recorded["name"]:
        config = dict(recorded["config"])
    else:
        config = {k: meta["sde"][k] for k in SDE_KEYS}
    if name == "mrs":
        config = {**MRS_DEFAULTS, **config}
    else:
        config.setdefault("mode", "posterior")
    if order is not None:
        if name != "mrs":
            raise SystemExit(f"error: --order is the order of the mrs solver; this run uses {name}.")
        config["order"] = order
    if name == "mrs" and config["solver_type"] == "sde" and config["order"] > 2:
        raise SystemExit(f"error: the mrs SDE solver takes orders 1 and 2, not {config['order']}.")
    return name, config


# -- schedules of the mean-reverting SDE on the steps 0..T ------------------------------------------

def theta_schedule(name: str, T: int) -> np.ndarray:
    """``T + 1`` values ``theta_t`` (float64) of the schedule ``name``."""
    if name == "cosine":  # improved-DDPM cosine over T + 2 steps, s = 0.008
        steps = T + 2
        x = np.linspace(0, steps, steps + 1)
        abar = np.cos(((x / steps) + 0.008) / (1 + 0.008) * np.pi * 0.5) ** 2
        return 1 - (abar / abar[0])[1:-1]
    if name == "linear":
        scale = 1000 / (T + 1)
        return np.linspace(scale * 0.0001, scale * 0.02, T + 1)
    if name == "constant":
        return np.ones(T + 1)
    raise SystemExit(f"error: the metadata names the theta schedule {name!r}; this example knows cosine, linear, "
                     "constant.")


def sde_schedule(sde: dict, keep_theta_0: bool) -> dict:
    """``thetas``, ``theta_bar`` (``keep_theta_0`` false: ``theta_0`` subtracted, the training SDE),
    ``dt`` and the marginals ``alpha = exp(-theta_bar dt)``, ``sigma``, ``lambda = log(alpha / sigma)``
    on the steps ``t = 0..T`` (float64)."""
    T, lam = int(sde["T"]), float(sde["lam"])
    thetas = theta_schedule(sde["schedule"], T)
    theta_bar = np.cumsum(thetas) - (0.0 if keep_theta_0 else thetas[0])
    dt = -np.log(float(sde["eps"])) / theta_bar[-1]
    alpha = np.exp(-theta_bar * dt)
    sigma = lam * np.sqrt(1 - alpha ** 2)
    with np.errstate(divide="ignore"):
        lambdas = np.log(alpha) - np.log(sigma)
    return {"t": np.arange(T + 1, dtype=np.float64), "thetas": thetas, "theta_bar": theta_bar, "dt": dt,
            "alpha": alpha, "sigma": sigma, "lambda": lambdas, "lam": lam}


def run_schedule(meta: dict, keep_theta_0: bool) -> dict:
    """``t``, ``alpha``, ``sigma``, ``lambda`` (float32) of the SDE a run solves: the metadata's
    ``mr_schedule`` (the values daclip-kit computed) when it is that SDE, else rebuilt from ``sde``."""
    sched = meta["mr_schedule"]
    if bool(sched.get("keep_theta_0", True)) == keep_theta_0:
        return {k: np.asarray([np.inf if v is None else v for v in sched[k]], dtype=np.float32)
                for k in ("t", "alpha", "sigma", "lambda")}
    built = sde_schedule(meta["sde"], keep_theta_0)
    return {k: built[k].astype(np.float32) for k in ("t", "alpha", "sigma", "lambda")}


def at(sched: dict, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``alpha``, ``sigma``, ``lambda`` interpolated linearly at float ``times`` (float32); where
    ``sigma_0 = 0`` (the training SDE) ``lambda`` is ``log(alpha) - log(sigma)`` of the interpolated
    values (``+inf`` at ``t = 0``)."""
    alpha = np.interp(times, sched["t"], sched["alpha"]).astype(np.float32)
    sigma = np.interp(times, sched["t"], sched["sigma"]).astype(np.float32)
    if sched["sigma"][0] == 0:
        with np.errstate(divide="ignore"):
            return alpha, sigma, (np.log(alpha) - np.log(sigma)).astype(np.float32)
    return alpha, sigma, np.interp(times, sched["t"], sched["lambda"]).astype(np.float32)


# -- mrs: the MR Sampler's exponential-integrator solver -----------------------------------------

def step_orders(intervals: int, order: int) -> list[int]:
    """Solver order of each step (official rule: warm-up with lower orders; runs of fewer than 10
    steps lower the order before the last step)."""
    orders = []
    for i in range(1, intervals + 1):
        if i < order:
            o = i
        elif i < intervals and intervals < 10:
            o = min(order, intervals - i)
        else:
            o = order
        orders.append(min(o, i))
    return orders


def _karras(start: float, end: float, n: int, rho: float) -> np.ndarray:
    ramp = np.linspace(0, 1, n, dtype=np.float32)
    a, b = start ** (1 / rho), end ** (1 / rho)
    return ((a + ramp * (b - a)) ** rho).astype(np.float32)


def mrs_grid(sched: dict, config: dict, steps: int) -> np.ndarray:
    """The times ``t_0 > ... > t_M`` of a run (float32): the network is evaluated at all but the last."""
    T, n, kind = len(sched["t"]) - 1, steps + 1, config["time_schedule"]
    t_max = T - int((sched["lambda"] < config["lambda_min"]).sum())  # the last step with lambda >= lambda_min
    if kind == "linspace":
        grid = np.linspace(0, t_max, n, dtype=np.float32)[::-1]
    elif kind == "leading":
        grid = (np.arange(n, dtype=np.float32) * (t_max // n))[::-1] + np.float32(config["timestep_offset"])
    elif kind == "trailing":
        grid = np.arange(t_max, 0, -(T / n), dtype=np.float32)
    elif kind == "karras-n":
        ratio = sched["sigma"] / sched["alpha"]
        grid = np.interp(_karras(float(ratio.max()), float(ratio.min()), n, config["rho"]), ratio, sched["t"])
    elif kind == "karras-t":
        grid = _karras(float(T), 1.0, n, config["rho"])
    elif kind == "linear-lambda":
        low = max(float(sched["lambda"].min()), config["lambda_min"])
        levels = np.linspace(low, float(sched["lambda"].max()), n, dtype=np.float32)
        grid = np.interp(levels, sched["lambda"][::-1], sched["t"][::-1])
    else:
        raise SystemExit(f"error: unknown time_schedule {kind!r} in the metadata.")
    grid = np.ascontiguousarray(grid, dtype=np.float32)
    if len(grid) < 2 or not (grid[1:] < grid[:-1]).all():
        raise SystemExit(f"error: {kind} with {steps} steps gives a grid that is not strictly decreasing; use fewer.")
    return grid


def sample_mrs(predict_noise: Callable[[np.ndarray, float], np.ndarray], lq: np.ndarray, x: np.ndarray,
               sched: dict, config: dict, steps: int, draw: Callable[[np.ndarray], np.ndarray],
               lam: float) -> np.ndarray:
    """The ``mrs`` sampler with ``config`` (every setting of daclip-kit's ``MRSConfig``) from ``x``.

    Args:
        predict_noise: ``(x_t, t) -> noise`` (the network, its output as noise; ``t`` a float time).
        lq: ``(B, 3, H, W)`` LQ images (the SDE mean).
        x: ``(B, 3, H, W)`` start state ``lq + lambda * z``.
        sched: :func:`run_schedule` of the SDE the config solves.
        steps: the ``steps`` of the run (network evaluations, except for ``trailing`` grids).
        draw: standard-normal noise shaped like its argument (``solver_type = "sde"``).
        lam: the stationary standard deviation (``fit_target = "velocity"``).

    Returns:
        The final state ``(B, 3, H, W)`` (not clamped).
    """
    c = config
    grid = mrs_grid(sched, c, steps)
    a, s, lams = at(sched, grid)
    evals = len(grid) - 1
    orders = step_orders(evals, c["order"])
    clean_end = s[-1] == 0  # the training SDE at t = 0: every update's limit there is the data prediction
    data = c["parameterization"] == "data"

    def clean(out, x, a_t, s_t):
        if c["fit_target"] == "noise":
            return (x - s_t * out) / a_t - (1 - a_t) / a_t * lq
        if c["fit_target"] == "data":
            return out
        return a_t * x - s_t / np.float32(lam) * out + (1 - a_t) * lq  # velocity

    def noise(out, x, a_t, s_t):
        if c["fit_target"] == "noise":
            return out
        if c["fit_target"] == "data":
            return (x - lq - (out - lq) * a_t) / s_t
        return (out * a_t + (x - lq) * s_t / np.float32(lam)) / np.float32(lam)

    def threshold(q):
        flat = q.reshape(q.shape[0], -1)
        level = np.quantile(np.abs(flat), c["threshold_ratio"], axis=1).astype(np.float32)
        level = np.clip(level, 1, c["threshold_max"])[:, None]
        return (np.clip(flat, -level, level) / level).reshape(q.shape).astype(np.float32)

    history: list[np.ndarray] = []
    for k in range(evals):
        i = k + 1
        out = predict_noise(x, float(grid[k]))
        q = clean(out, x, a[i - 1], s[i - 1]) if data else noise(out, x, a[i - 1], s[i - 1])
        if c["thresholding"]:
            q = threshold(q)
        history = [q, *history][: c["order"]]
        if (c["denoise_last"] or clean_end) and i == evals:
            return q if data else clean(out, x, a[i - 1], s[i - 1])
        x = mrs_update(x, lq, history, orders[k], a, s, lams, i, c, draw)
    return x.astype(np.float32)


def mrs_update(x, lq, history, order, a, s, lams, i, c, draw) -> np.ndarray:
    """Move ``x`` from ``t_{i-1}`` to ``t_i`` with the converted outputs ``history`` (newest first)."""
    h = lams[i] - lams[i - 1]
    q0 = history[0]
    if order >= 2:
        r0 = (lams[i - 1] - lams[i - 2]) / h
        d1 = (q0 - history[1]) / r0
    if order == 3:
        r1 = (lams[i - 2] - lams[i - 3]) / h
        d1_1 = (history[1] - history[2]) / r1
        d2 = (d1 - d1_1) / (r0 + r1)
        d1 = d1 + (d1 - d1_1) * r0 / (r0 + r1)
    ratio, a_i, a_prev = s[i] / s[i - 1], a[i], a[i - 1]
    if c["solver_type"] == "ode":
        if c["parameterization"] == "data":
            phi1 = np.exp(-h) - 1
            total = phi1 * q0
            if order >= 2:
                phi2 = phi1 / h + 1
                total = total - phi2 * d1
                if order == 3:
                    total = total + (phi2 / h - np.float32(0.5)) * d2
            return ratio * x - a_i * total + lq * (1 - ratio + ratio * a_prev - a_i)
        phi1 = np.exp(h) - 1
        total = phi1 * q0
        if order >= 2:
            phi2 = phi1 / h - 1
            total = total + phi2 * d1
            if order == 3:
                total = total + (phi2 / h - np.float32(0.5)) * d2
        return a_i / a_prev * x - s[i] * total + lq * (1 - a_i / a_prev)
    z = draw(x)  # the reverse-time SDE (order 1 or 2)
    if c["parameterization"] == "data":
        phi1 = 1 - np.exp(-2 * h)
        out = ratio * np.exp(-h) * x + a_i * phi1 * q0
        if order == 2:
            out = out + a_i * (1 - phi1 / 2 / h) * d1
        out = out + s[i] * np.sqrt(phi1) * z
        return out + lq * (1 - a_i / a_prev * np.exp(-2 * h) - a_i * phi1)
    phi1 = np.exp(h) - 1
    out = a_i / a_prev * x - 2 * s[i] * phi1 * q0
    if order == 2:
        out = out - 2 * s[i] * (phi1 / h - 1) * d1
    out = out + s[i] * np.sqrt(np.exp(2 * h) - 1) * z
    return out + lq * (1 - a_i / a_prev)


# -- irsde: the IR-SDE sampler (posterior, reverse SDE or probability-flow ODE) on integer steps ---------

def irsde_grid(T: int, steps: int | None) -> list[int]:
    """The steps ``T, ..., 1`` of a run, or ``steps`` of them evenly spaced (rounded)."""
    if steps is None or steps >= T:
        return list(range(T, 0, -1))
    return sorted({int(v) for v in np.round(np.linspace(T, 1, steps))}, reverse=True)


def irsde_coefficients(sched: dict, t: int, s: int, mode: str) -> tuple[float, float, float]:
    """``(c1, c2, c3)`` of the step from ``t`` to ``s < t``: ``x_s = lq + c1 (x_t - lq) + c2 eps + c3 z``."""
    lam, dt, bar = sched["lam"], sched["dt"], sched["theta_bar"]
    inc = sched["thetas"][t] if s == t - 1 else bar[t] - bar[s]  # theta_bar_t - theta_bar_s
    sigma_t = sched["sigma"][t]
    if mode == "posterior":  # sample p(x_s | x_t, x0_hat), x0_hat from the predicted noise
        A, B, C = np.exp(-inc * dt), np.exp(-bar[t] * dt), np.exp(-bar[s] * dt)
        term1 = A * (1 - C ** 2) / (1 - B ** 2)
        term2 = C * (1 - A ** 2) / (1 - B ** 2)
        var = (1 - A ** 2) * (1 - C ** 2) / (1 - B ** 2)
        return term1 + term2 / B, -term2 / B * sigma_t, lam * np.sqrt(max(var, 1e-20 * dt))
    g2dt = 2 * lam ** 2 * inc * dt  # sigma_t^2 dt of the step
    if mode == "ode":
        return 1 + inc * dt, -0.5 * g2dt / sigma_t, 0.0
    if mode == "sde":
        return 1 + inc * dt, -g2dt / sigma_t, -np.sqrt(g2dt)
    raise SystemExit(f"error: unknown irsde mode {mode!r}; use posterior, sde or ode.")


def sample_irsde(predict_noise: Callable[[np.ndarray, float], np.ndarray], lq: np.ndarray, x: np.ndarray,
                 sde: dict, mode: str, steps: int | None, draw: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The ``irsde`` sampler (``mode`` ``posterior``, ``sde`` or ``ode``) over ``steps`` integer
    steps (``None``: all ``T``) on the training SDE, from ``x``; returns the final state."""
    sched = sde_schedule(sde, keep_theta_0=False)
    grid = irsde_grid(int(sde["T"]), steps)
    for k, t in enumerate(grid):
        c1, c2, c3 = irsde_coefficients(sched, t, grid[k + 1] if k + 1 < len(grid) else 0, mode)
        eps = predict_noise(x, float(t))
        out = (x - lq) * np.float32(c1) + np.float32(c2) * eps + lq
        x = out + np.float32(c3) * draw(x) if mode != "ode" else out
    return x.astype(np.float32)


# -- a whole restoration -----------------------------------------------------------------------------

def split_noise(noise: np.ndarray | None, shape: tuple[int, ...]) -> tuple[np.ndarray | None, list | None]:
    """``(start noise, later draws)`` of ``--noise``: ``(B, 3, H, W)`` (the start noise alone) or
    ``(B, 1 + S, 3, H, W)`` (then the ``S`` draws of the stochastic steps, in order)."""
    if noise is None:
        return None, None
    noise = np.asarray(noise, dtype=np.float32)
    if noise.shape == tuple(shape):
        return noise, None
    if noise.ndim == 5 and noise.shape[0] == shape[0] and noise.shape[1] >= 1 and noise.shape[2:] == tuple(shape[1:]):
        return noise[:, 0], [noise[:, k] for k in range(1, noise.shape[1])]
    b, c, h, w = shape
    raise SystemExit(f"error: --noise has shape {noise.shape}; this image takes ({b}, {c}, {h}, {w}) (its own size), "
                     f"or ({b}, 1 + S, {c}, {h}, {w}) with the S draws of the stochastic steps after it.")


def restore(image: np.ndarray, encoder: ort.InferenceSession | None, denoiser: ort.InferenceSession, *,
            sampler: str | None = None, steps: int | None = None, order: int | None = None,
            noise: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Restore ``image`` ``(1, 3, H, W)`` in [0, 1] as ``daclip-kit restore`` does with the
    sampler the denoiser's metadata records (or ``sampler`` on its SDE); returns ``(1, 3, H, W)``
    clamped to [0, 1].

    Args:
        encoder: the exported DA-CLIP encoder (``None`` for a denoiser that takes no embeddings).
        steps: network evaluations (default: the recorded sampler's, e.g. a student's K).
        order: the ``mrs`` solver order instead of the recorded one.
        noise: the start noise ``z`` of ``x_T = lq + lambda z`` (``(1, 3, H, W)``), optionally
            followed by the stochastic steps' draws (``(1, 1 + S, 3, H, W)``); default drawn from
            NumPy's generator seeded with ``seed``.
    """
    meta = metadata(denoiser)
    if meta.get("graph") != "denoiser":
        raise SystemExit(f"error: --denoiser holds a {meta.get('graph')} graph; give an exported denoiser "
                         "(daclip-kit export irsde-unet ...).")
    name, config = run_settings(meta, sampler, order)
    names = [i.name for i in denoiser.get_inputs()]
    embeddings: dict[str, np.ndarray] = {}
    if any(n in ("degradation", "content") for n in names):
        if encoder is None:
            raise SystemExit("error: this denoiser takes DA-CLIP embeddings; pass --encoder (daclip-kit export "
                             "daclip ...).")
        pixels = clip_pixels(image, metadata(encoder)["preprocess"])
        content, degradation = encoder.run(["content", "degradation"], {"pixels": pixels})
        embeddings = {"degradation": degradation, "content": content}
    sched = run_schedule(meta, keep_theta_0=name == "mrs" and not config["training_schedule"])
    rng = np.random.default_rng(seed)
    start, draws = split_noise(noise, image.shape)
    if start is None:
        start = rng.standard_normal(image.shape).astype(np.float32)

    def draw(like: np.ndarray) -> np.ndarray:
        if draws is None:
            return rng.standard_normal(like.shape).astype(np.float32)
        if not draws:
            raise SystemExit("error: --noise holds fewer draws than this run's stochastic steps take.")
        return draws.pop(0)

    output = meta.get("prediction", "noise")

    def predict_noise(x_t: np.ndarray, t: float) -> np.ndarray:
        feed = {"x_t": x_t, "lq": image, "t": np.full((x_t.shape[0],), t, dtype=np.float32)}
        feed.update({n: embeddings[n] for n in names if n in embeddings})
        out = denoiser.run([output], feed)[0]
        if output == "noise":
            return out
        # a clean-image prediction: the noise that puts it at x_t in the SDE the run solves
        a, s = (np.float32(np.interp(t, sched["t"], sched[k])) for k in ("alpha", "sigma"))
        return (x_t - image - a * (out - image)) / s

    lam = float(meta["sde"]["lam"])
    x = (image + start * np.float32(lam)).astype(np.float32)
    if name == "mrs":
        run_steps = steps or config["num_sample_steps"] or 10
        x = sample_mrs(predict_noise, image, x, sched, config, run_steps, draw, lam)
    else:
        x = sample_irsde(predict_noise, image, x, meta["sde"], config["mode"], steps, draw)
    if draws:
        raise SystemExit(f"error: --noise holds {len(draws)} more draw(s) than this run takes.")
    return np.clip(x, 0, 1)


def write(path: Path, restored: np.ndarray) -> None:
    """``.npy``: the float array; otherwise an 8-bit image. Written beside ``path``, then moved."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        if path.suffix.lower() == ".npy":
            np.save(tmp, restored)
        else:
            u8 = np.round(restored[0].transpose(1, 2, 0) * 255).astype(np.uint8)  # as daclip-kit writes it
            Image.fromarray(u8).save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path, help="low-quality image")
    parser.add_argument("--encoder", type=Path, default=None,
                        help="daclip-kit export daclip ... (ONNX); needed by denoisers that take embeddings")
    parser.add_argument("--denoiser", type=Path, required=True, help="daclip-kit export irsde-unet ... (ONNX)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output .png (or .npy: float array)")
    parser.add_argument("--sampler", choices=SAMPLERS, default=None,
                        help="run this sampler on the recorded SDE (default: the recorded sampler, as restore)")
    parser.add_argument("--steps", type=int, default=None,
                        help="network evaluations (default: the recorded sampler's, e.g. a student's K)")
    parser.add_argument("--order", type=int, default=None, choices=(1, 2, 3), help="mrs solver order")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise drawn here (NumPy)")
    parser.add_argument("--noise", type=Path, default=None,
                        help=".npy standard-normal start noise (1, 3, H, W), or (1, 1 + S, 3, H, W) with the S "
                        "draws of a stochastic sampler's steps; the same file as restore --noise")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        raise SystemExit(f"error: --steps must be at least 1, got {args.steps}.")
    image = read_image(args.image)
    noise = np.load(args.noise, allow_pickle=False) if args.noise else None
    denoiser = session(args.denoiser, args.threads)
    encoder = session(args.encoder, args.threads) if args.encoder else None
    name, config = run_settings(metadata(denoiser), args.sampler, args.order)
    restored = restore(image, encoder, denoiser, sampler=args.sampler, steps=args.steps, order=args.order,
                       noise=noise, seed=args.seed)
    write(args.output, restored)
    detail = ", ".join(f"{k} {config[k]}" for k in ("mode", "solver_type", "order", "num_sample_steps") if k in config)
    print(f"restored {args.image} -> {args.output} ({name}: {detail}{f'; {args.steps} steps' if args.steps else ''})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
