"""Restore an image with the exported DA-CLIP encoder and IR-SDE denoiser: ONNX Runtime and NumPy
only (torch is never imported).

Export the two graphs first (random weights without ``--weights``; the official ones:
``--weights daclip-vit-b-32`` and ``--weights universal-ir``)::

    daclip-kit export daclip --weights daclip-vit-b-32 -o daclip.onnx
    daclip-kit export irsde-unet --weights universal-ir -o unet.onnx
    python examples/onnx_restore.py lq.png --encoder daclip.onnx --denoiser unet.onnx -o restored.png

The sampler is MRS (the ``mrs`` sampler of daclip-kit: data-prediction probability-flow ODE,
order 1 or 2, the official ``linspace`` time grid cut at ``lambda_min``), rebuilt from the
schedule arrays the denoiser carries in its metadata. :func:`sample_ode` takes any plan of
times and schedule values, so another schedule (e.g. a distilled student's) can drive it.
``-o`` ending in ``.npy`` saves the float ``(1, 3, H, W)`` result instead of a PNG.
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
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    im = im.crop((left, top, left + size, top + size))
    x = np.asarray(im, dtype=np.float32) / np.float32(255)
    x = (x - np.float32(pre["mean"])) / np.float32(pre["std"])
    return x.transpose(2, 0, 1)[None].astype(np.float32)


# -- the MRS plan: times, schedule values and orders of a run -----------------------------------

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


def mrs_plan(schedule: dict, steps: int, order: int, lambda_min: float) -> dict:
    """``times`` ``t_0 > ... > t_M`` (``linspace`` grid from the last step whose half log-SNR is
    at least ``lambda_min`` down to 0) with ``alpha``, ``sigma``, ``lambda`` interpolated there and
    the ``orders`` of the ``M = steps`` steps."""
    t = np.asarray(schedule["t"], dtype=np.float32)
    lam = np.asarray(schedule["lambda"], dtype=np.float32)
    t_max = (len(t) - 1) - int((lam < lambda_min).sum())
    times = np.linspace(0, t_max, steps + 1, dtype=np.float32)[::-1]
    plan = {"times": times, "orders": step_orders(steps, order)}
    for key in ("alpha", "sigma", "lambda"):
        plan[key] = np.interp(times, t, np.asarray(schedule[key], dtype=np.float32)).astype(np.float32)
    return plan


# -- the sampler loop ------------------------------------------------------------------------------

def sample_ode(predict_noise: Callable[[np.ndarray, float], np.ndarray], lq: np.ndarray, x: np.ndarray,
               plan: dict) -> np.ndarray:
    """Data-prediction probability-flow ODE of the mean-reverting SDE (MRS, order 1 or 2).

    Args:
        predict_noise: ``(x_t, t) -> noise`` (the network; ``t`` a float time).
        lq: ``(B, 3, H, W)`` LQ images (the SDE mean).
        x: ``(B, 3, H, W)`` start state ``lq + lambda * z``.
        plan: ``times`` (``M + 1``), ``alpha``, ``sigma``, ``lambda`` at those times, ``orders`` (``M``).

    Returns:
        The final state ``(B, 3, H, W)`` (not clamped).
    """
    a, s, lam, orders = plan["alpha"], plan["sigma"], plan["lambda"], plan["orders"]
    previous = None
    for k, t in enumerate(plan["times"][:-1]):
        i = k + 1
        eps = predict_noise(x, float(t))
        x0 = (x - s[i - 1] * eps) / a[i - 1]
        data = x0 - (1 - a[i - 1]) / a[i - 1] * lq
        h = lam[i] - lam[i - 1]
        phi1 = np.exp(-h) - 1
        total = phi1 * data
        if orders[k] == 2:
            d1 = (data - previous) / ((lam[i - 1] - lam[i - 2]) / h)
            total = total - (phi1 / h + 1) * d1
        ratio = s[i] / s[i - 1]
        x = ratio * x - a[i] * total + lq * (1 - ratio + ratio * a[i - 1] - a[i])
        previous = data
    return x.astype(np.float32)


def restore(image: np.ndarray, encoder: ort.InferenceSession, denoiser: ort.InferenceSession, *,
            steps: int = 10, order: int = 2, noise: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Restore ``image`` ``(1, 3, H, W)`` in [0, 1]; returns ``(1, 3, H, W)`` clamped to [0, 1]."""
    if order not in (1, 2):
        raise SystemExit(f"error: --order {order}: this example implements orders 1 and 2.")
    enc_meta, den_meta = metadata(encoder), metadata(denoiser)
    content, degradation = encoder.run(["content", "degradation"], {"pixels": clip_pixels(image, enc_meta["preprocess"])})
    embeddings = {"degradation": degradation, "content": content}
    names = [i.name for i in denoiser.get_inputs()]
    lam_min = den_meta["sampler"]["config"]["lambda_min"]
    plan = mrs_plan(den_meta["mr_schedule"], steps, order, float(lam_min))
    if noise is None:
        noise = np.random.default_rng(seed).standard_normal(image.shape).astype(np.float32)
    x = image + np.float32(den_meta["sde"]["lam"]) * noise

    output = den_meta.get("prediction", "noise")
    sched = den_meta["mr_schedule"]

    def predict_noise(x_t: np.ndarray, t: float) -> np.ndarray:
        feed = {"x_t": x_t, "lq": image, "t": np.full((x_t.shape[0],), t, dtype=np.float32)}
        feed.update({n: embeddings[n] for n in names if n in embeddings})
        out = denoiser.run([output], feed)[0]
        if output == "noise":
            return out
        # a clean-image prediction: the noise that puts it at x_t in the SDE
        a, s = (np.float32(np.interp(t, sched["t"], sched[k])) for k in ("alpha", "sigma"))
        return (x_t - image - a * (out - image)) / s

    return np.clip(sample_ode(predict_noise, image, x.astype(np.float32), plan), 0, 1)


def write(path: Path, restored: np.ndarray) -> None:
    """``.npy``: the float array; otherwise an 8-bit image. Written beside ``path``, then moved."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        if path.suffix.lower() == ".npy":
            np.save(tmp, restored)
        else:
            u8 = (restored[0].transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)
            Image.fromarray(u8).save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path, help="low-quality image")
    parser.add_argument("--encoder", type=Path, required=True, help="daclip-kit export daclip ... (ONNX)")
    parser.add_argument("--denoiser", type=Path, required=True, help="daclip-kit export irsde-unet ... (ONNX)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output .png (or .npy: float array)")
    parser.add_argument("--steps", type=int, default=10, help="network evaluations (default 10)")
    parser.add_argument("--order", type=int, default=2, choices=(1, 2), help="MRS solver order (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the start noise (NumPy)")
    parser.add_argument("--noise", type=Path, default=None, help=".npy standard-normal start noise (1, 3, H, W)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    args = parser.parse_args(argv)
    image = read_image(args.image)
    noise = np.load(args.noise).astype(np.float32) if args.noise else None
    restored = restore(image, session(args.encoder, args.threads), session(args.denoiser, args.threads),
                       steps=args.steps, order=args.order, noise=noise, seed=args.seed)
    write(args.output, restored)
    print(f"restored {args.image} -> {args.output} ({args.steps} MRS steps, order {args.order})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
