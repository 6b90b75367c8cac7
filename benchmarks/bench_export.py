"""Time one denoiser step of the full universal IR-SDE U-Net exported to ONNX (ONNX Runtime, CPU
execution provider) beside the same network in PyTorch, in one process with the same threads.

    .venv/bin/python benchmarks/bench_export.py                       # 256x256, batch 1, 2 threads
    .venv/bin/python benchmarks/bench_export.py --threads 1 --repeats 7 --json out.json

The network (random weights; speed does not depend on them) is exported with
``daclip_kit.export.export_network`` (the same path as ``daclip-kit export irsde-unet``) into a
temporary folder, or read from ``--onnx`` (a file written by that command). Each round runs one
PyTorch step and one ONNX Runtime step back to back on the same inputs, so load on a shared
machine hits both alike; the medians over the rounds are reported with the largest difference
between the two outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import onnxruntime as ort
import torch


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (after one warm-up round)")
    parser.add_argument("--onnx", type=Path, default=None, help="an exported irsde-unet .onnx (default: export now)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)

    from daclip_kit import create_backbone
    from daclip_kit.export import export_network

    torch.manual_seed(0)
    net = create_backbone("irsde-unet").eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.onnx
        export_s = None
        if path is None:
            path = Path(tmp) / "irsde-unet.onnx"
            t0 = time.perf_counter()
            export_network("irsde-unet", net, path, "onnx", kind="denoiser")
            export_s = time.perf_counter() - t0
        torch.set_num_threads(args.threads)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

        b, s, d = args.batch, args.size, net.context_dim
        g = torch.Generator().manual_seed(1)
        inputs = {"x_t": torch.rand(b, 3, s, s, generator=g), "lq": torch.rand(b, 3, s, s, generator=g),
                  "t": torch.full((b,), 50.0), "degradation": torch.randn(b, d, generator=g),
                  "content": torch.randn(b, d, generator=g)}
        feed = {k: v.numpy() for k, v in inputs.items()}
        torch_ms, onnx_ms = [], []
        with torch.no_grad():
            for i in range(args.repeats + 1):
                t0 = time.perf_counter()
                ref = net(inputs["x_t"], inputs["lq"], inputs["t"], degradation=inputs["degradation"],
                          content=inputs["content"])
                t1 = time.perf_counter()
                (out,) = sess.run(["noise"], feed)
                t2 = time.perf_counter()
                if i:  # the first round warms up both
                    torch_ms.append((t1 - t0) * 1e3)
                    onnx_ms.append((t2 - t1) * 1e3)
    result = {
        "network": "irsde-unet (universal: nf 64, ch_mult 1-2-4-8, context 512; random weights)",
        "input": f"{b}x3x{s}x{s}", "threads": args.threads, "rounds": args.repeats,
        "pytorch_ms_median": round(statistics.median(torch_ms), 1),
        "onnxruntime_ms_median": round(statistics.median(onnx_ms), 1),
        "pytorch_ms": [round(v, 1) for v in torch_ms], "onnxruntime_ms": [round(v, 1) for v in onnx_ms],
        "max_abs_diff": float(np.abs(out - ref.numpy()).max()),
        "export_s": None if export_s is None else round(export_s, 1),
        "torch": torch.__version__, "onnxruntime": ort.__version__,
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
