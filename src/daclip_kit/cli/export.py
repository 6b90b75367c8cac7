"""``daclip-kit export MODEL --format onnx|torchscript|exported -o FILE``: a network as a graph
that runs without daclip-kit (ONNX Runtime, TorchScript, ``torch.export``), with any image size,
a dynamic batch and its metadata inside (see ``docs/export.md``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import console

FORMATS = ("onnx", "torchscript", "exported")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a backbone (nafnet, restormer, promptir, airnet, irsde-unet, ...; "
                        "daclip-kit ls backbones) or daclip (DA-CLIP's image encoder)")
    parser.add_argument("--weights", default=None,
                        help="what restore --weights takes: weights name, file, native folder, training run folder "
                        "or hf://...; the sampler recorded with it goes into the metadata (default: random weights, "
                        "for trying the export)")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="onnx",
                        help="onnx (ONNX Runtime), torchscript (torch.jit.load) or exported "
                        "(torch.export .pt2, torch.export.load); default onnx")
    parser.add_argument("-o", "--output", type=Path, required=True, help="file to write (.onnx, .pt, .pt2)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--onnx-exporter", choices=("auto", "torchscript", "dynamo"), default="auto",
                        help="torch.onnx exporter: auto (TorchScript-based, else dynamo), torchscript or dynamo")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import check_output, export_network, load_model

    check_output(args.output, args.overwrite)  # before loading anything
    net, kind, sampler = load_model(args.model, args.weights)
    plan = export_network(args.model, net, args.output, args.fmt, kind=kind, sampler=sampler,
                          overwrite=args.overwrite, onnx_exporter=args.onnx_exporter)
    inputs = [i["name"] for i in plan.meta["inputs"]]
    outputs = [o["name"] for o in plan.meta["outputs"]]
    result = {"model": args.model, "graph": kind, "format": args.fmt, "output": str(args.output),
              "inputs": inputs, "outputs": outputs, "exporter": plan.meta["exporter"],
              "parameters": sum(p.numel() for p in net.parameters())}
    if kind == "denoiser":  # the sampler the metadata records: what restore runs these weights with
        result.update(sampler=plan.meta["sampler"]["name"], steps=plan.meta["steps"])
    if args.json:
        console.print_json(result)
    else:
        console.stdout().print(f"exported {args.model} ({kind}, {result['parameters']:,} parameters) as {args.fmt} "
                               f"-> {args.output}  inputs: {', '.join(inputs)}; outputs: {', '.join(outputs)}"
                               + (f"; sampler {result['sampler']}, {result['steps']} steps" if "sampler" in result
                                  else ""),
                               markup=False)
    return 0


__all__ = ["configure", "run"]
