"""The speed ladder: teacher samplers at 1-20 network evaluations (NFE) against students distilled to
1, 2 and 4, on all ten degradations of the mini set. CPU and offline; a benchmark, not a test.

Run::

    HF_HUB_OFFLINE=1 python benchmarks/bench_distill.py --json distill.json [--work DIR] [--distill gt_weight=0.5]

What it does, through the public API and the other benchmarks' code:

1. builds the mini set and trains the tiny DA-CLIP of the learning check
   (``benchmarks/bench_learning.py``), then the tiny IR-SDE (``irsde_tiny.toml``) on **all ten**
   degradations (the learning check uses ``noisy`` only), predicting the clean image
   (``--prediction clean``: ``network.prediction = "clean"``, ``objective = "clean"``, L1; the
   noise-predicting tiny U-Net does not restore the degradations far from their GT, docs/train.md);
2. restores the held-out val images of every degradation with the teacher: the 100-step
   posterior (the official sampler, the reference), and at each NFE of ``--nfe`` the strided
   posterior, MRS ODE (official SDE), MRS ODE on the training SDE's schedule
   (``training_schedule``), Heun (the official SDE variant) and Euler-Maruyama
   (``bench_samplers.run_setting``: same per-image seeds);
3. distils the teacher into a student for each of ``--students`` (``distill_tiny.toml``: MRS ODE
   at 20 NFE as the teacher) and restores the same images with each student's own saved sampler.

The JSON written with ``--json``::

    {"teacher_100": {"psnr", "ssim", "lpips"}, "teacher_at": {"K": {"sampler", "psnr", "ssim", "lpips"}},
     "student": {"K": {"psnr", "ssim", "lpips", "psnr_vs_teacher100", "ssim_vs_teacher100", "s_per_img",
                       "psnr_vs_target", "ssim_vs_target", "target": {"sampler", "nfe", "psnr", "ssim", ...}}},
     "lq": {"psnr", "ssim", "lpips"}, "minutes",
     "rows": [every setting], "goal": {...}, "machine": {..., "load_before", "load_after"}}

``teacher_at[K]`` is the best (PSNR) of the teacher samplers at K NFE. PSNR/SSIM are against the
ground truth (official protocol: uint8, 4-pixel border crop); ``psnr_vs_teacher100``,
``ssim_vs_teacher100`` (and ``lpips_vs_teacher100``) compare an output with the 100-step
posterior's output of the same image (no border crop); ``psnr_vs_target`` / ``ssim_vs_target``
compare a student's output with the output of the teacher sampler it was distilled from (its run's
``teacher_sampler`` at ``teacher_steps``, on the same held-out images): how faithful the
distillation is, apart from how good the teacher is. LPIPS needs the AlexNet
weights (``--lpips-weights DIR``, or the daclip-kit cache; ``daclip-kit weights fetch
lpips-alexnet``); without them it is ``null``. Exit status 0 when the goal (docs/samplers.md) is
met, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_learning
import bench_samplers

TYPES = bench_learning.TYPES
#: (label, sampler, options) of the teacher at a given NFE; the SDE settings are the network's.
TEACHER = (
    ("posterior", "irsde", {"mode": "posterior"}),
    ("mrs-ode", "mrs", {"solver_type": "ode"}),
    ("mrs-ode-train", "mrs", {"solver_type": "ode", "training_schedule": True}),
    ("heun-sde", "heun", {"solver_type": "sde"}),
    ("euler-sde", "irsde", {"mode": "sde"}),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--work", type=Path,
                   help="keep the data, runs and finished stages here (stage-*.json, outputs/); a rerun with the "
                        "same folder reuses every finished stage (delete a stage's file to redo it)")
    p.add_argument("--skip-eval", action="store_true",
                   help="only train (and restore with) the students, e.g. beside a run doing the teacher samplers; "
                        "no report")
    p.add_argument("--teacher", type=Path, metavar="NETWORK",
                   help="a trained teacher (network-ema folder) on the mini set of --work instead of training one "
                        "(with --daclip; e.g. a longer run: the default 800 steps are too few for ten degradations)")
    p.add_argument("--daclip", type=Path, metavar="FOLDER", help="the teacher's DA-CLIP folder (with --teacher)")
    p.add_argument("--irsde-steps", type=int, default=800, help="IR-SDE steps on the ten degradations (800)")
    p.add_argument("--prediction", choices=["clean", "noise"], default="clean",
                   help="what the teacher trained here predicts (default clean: objective clean, L1; noise: the "
                        "run file's noise matching, which the tiny U-Net cannot do for large LQ-GT gaps, "
                        "docs/samplers.md)")
    p.add_argument("--daclip-steps", type=int, help="DA-CLIP steps (default: the run file's)")
    p.add_argument("--distill-steps", type=int, default=220, help="optimizer steps of each student (220)")
    p.add_argument("--distill", action="append", default=[], metavar="KEY=VALUE",
                   help="override a distill_tiny.toml setting for every student, e.g. gt_weight=0.5 (repeatable)")
    p.add_argument("--tag", default="", help="suffix of the student stages, to compare distillation settings "
                   "in one --work folder (e.g. --tag=-w0 --distill gt_weight=0)")
    p.add_argument("--students", type=int, nargs="*", default=[1, 2, 4], help="student NFE (1 2 4; none: teacher only)")
    p.add_argument("--nfe", type=int, nargs="+", default=[1, 2, 4, 5, 10, 20], help="teacher NFE")
    p.add_argument("--per-type", type=int, default=8, help="training pairs per degradation (8)")
    p.add_argument("--val-per-type", type=int, default=2, help="held-out val pairs per degradation (2)")
    p.add_argument("--lpips-weights", type=Path, help="folder holding alexnet-owt-7be5be79.pth")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if (args.teacher is None) != (args.daclip is None):
        p.error("--teacher and --daclip go together")
    return args


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages (``None`` where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def train_teacher(root: Path, work: Path, args: argparse.Namespace) -> tuple[Path, Path, dict]:
    """The tiny DA-CLIP, then the tiny IR-SDE on all ten degradations; (network-ema, DA-CLIP, info)."""
    from daclip_kit.train import train_restoration

    tic = time.perf_counter()
    result, _ = bench_learning.train_tiny_daclip(root, work / "daclip", args.device, args.daclip_steps)
    daclip = result.checkpoint / "daclip"
    daclip_minutes = (time.perf_counter() - tic) / 60
    types = ",".join(TYPES)
    clean = ("network.prediction=clean", "objective=clean", "loss=l1") if args.prediction == "clean" else ()
    cfg = bench_learning._irsde_config(root, work, str(daclip), args, "irsde", args.irsde_steps,
                                       f"data.degradations=[{types}]", "validation.every=0", *clean)
    tic = time.perf_counter()
    trained = train_restoration(cfg)
    return trained.checkpoint / "network-ema", daclip, {
        "daclip_steps": result.step, "daclip_minutes": round(daclip_minutes, 2), "irsde_steps": trained.step,
        "irsde_minutes": round((time.perf_counter() - tic) / 60, 2), "prediction": args.prediction}


def distil(root: Path, work: Path, teacher: Path, daclip: Path, k: int, args: argparse.Namespace) -> dict:
    """A ``k``-evaluation student of ``teacher`` (``distill_tiny.toml`` on the ten degradations)."""
    from daclip_kit.pretrained import native_info
    from daclip_kit.train import load_run_config, train_distill

    types = ",".join(TYPES)
    prediction = native_info(teacher).config.get("prediction", "noise")  # the student predicts what the teacher does
    overrides = [f"data.root={root}", f"out_dir={work / f'student-{k}{args.tag}'}", f"device={args.device}",
                 f"init_from={teacher}", f"embedder.weights={daclip}", f"data.degradations=[{types}]",
                 f"student_steps={k}", f"max_steps={args.distill_steps}", f"save_every={args.distill_steps}",
                 f"network.prediction={prediction}", *args.distill]
    cfg = load_run_config("distill", bench_learning.EXAMPLES / "distill_tiny.toml", overrides)
    tic = time.perf_counter()
    result = train_distill(cfg)
    losses = [r["loss_last"] for r in result.history if "loss_last" in r]
    return {"network": str(result.checkpoint / "network-ema"), "steps": result.step,
            "train_minutes": round((time.perf_counter() - tic) / 60, 2),
            "loss_last_first": losses[0] if losses else None, "loss_last_final": losses[-1] if losses else None,
            "teacher_sampler": {"name": cfg.teacher_sampler.name, "options": dict(cfg.teacher_sampler.options)},
            "teacher_steps": cfg.teacher_steps, "gt_weight": cfg.gt_weight}


class Scorer:
    """PSNR / SSIM against the ground truth (official protocol), LPIPS when its weights are here, and
    PSNR against the 100-step posterior's outputs once they are set."""

    def __init__(self, gts, lpips_weights: Path | None):
        from daclip_kit.errors import WeightsNotFoundError
        from daclip_kit.metrics.perceptual import load_lpips

        self.gts = gts
        self.reference = None
        try:
            self.lpips_net = load_lpips(lpips_weights)
        except WeightsNotFoundError as exc:
            print(f"LPIPS is not measured: {exc}", file=sys.stderr)
            self.lpips_net = None

    @staticmethod
    def agreement(outs, refs) -> dict:
        """Mean PSNR / SSIM of ``outs`` against ``refs`` (other outputs of the same images; no crop)."""
        from daclip_kit.metrics import psnr, ssim

        n = len(outs)
        return {"psnr": sum(float(psnr(o, r, crop_border=0)) for o, r in zip(outs, refs, strict=True)) / n,
                "ssim": sum(float(ssim(o, r, crop_border=0)) for o, r in zip(outs, refs, strict=True)) / n}

    def __call__(self, outs) -> dict:
        from daclip_kit.metrics import lpips, psnr, ssim

        n = len(outs)
        row = {"psnr": sum(float(psnr(o, g)) for o, g in zip(outs, self.gts, strict=True)) / n,
               "ssim": sum(float(ssim(o, g)) for o, g in zip(outs, self.gts, strict=True)) / n,
               "lpips": None}
        if self.lpips_net is not None:
            row["lpips"] = sum(float(lpips(o, g, net=self.lpips_net)) for o, g in zip(outs, self.gts, strict=True)) / n
        if self.reference is not None:
            agree = self.agreement(outs, self.reference)
            row["psnr_vs_teacher100"], row["ssim_vs_teacher100"] = agree["psnr"], agree["ssim"]
            if self.lpips_net is not None:
                row["lpips_vs_teacher100"] = sum(float(lpips(o, r, net=self.lpips_net))
                                                 for o, r in zip(outs, self.reference, strict=True)) / n
        return row


def goal(report: dict) -> dict:
    """The issue's goal: the 1-NFE student >= the best teacher at 5 NFE and within 0.5 dB / 0.03 LPIPS
    of the 100-step posterior; the 4-NFE student within 0.2 dB."""
    ref, students, at = report["teacher_100"], report["student"], report["teacher_at"]
    out: dict = {}
    if "1" in students and "5" in at:
        s1 = students["1"]
        out["student1_ge_teacher5"] = s1["psnr"] >= at["5"]["psnr"]
        out["student1_within_0.5dB"] = ref["psnr"] - s1["psnr"] <= 0.5
        out["student1_within_0.03_lpips"] = (None if s1["lpips"] is None or ref["lpips"] is None
                                             else s1["lpips"] - ref["lpips"] <= 0.03)
    if "4" in students:
        out["student4_within_0.2dB"] = ref["psnr"] - students["4"]["psnr"] <= 0.2
    # an unmeasured LPIPS (None) counts as not met
    out["met"] = "1" in students and "4" in students and all(v is True for v in out.values())
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from daclip_kit.bench.data import paired_images
    from daclip_kit.data.mini import build_mini
    from daclip_kit.factory import create_sampler
    from daclip_kit.io import atomic_write_text, read_image

    torch.set_num_threads(args.threads)
    load_before = load_average()
    work = args.work or Path(tempfile.mkdtemp(prefix="daclip-kit-distill-"))
    if work.exists() and any(work.iterdir()) and not (work / "stage-teacher.json").is_file():
        raise SystemExit(f"--work {work} is not empty and holds no finished teacher stage; choose a new folder.")
    root = work / "mini"
    (work / "outputs").mkdir(parents=True, exist_ok=True)

    def stage(name: str, make) -> dict:
        """``make()``'s result, saved as ``stage-NAME.json`` with its minutes (reused when there)."""
        path = work / f"stage-{name}.json"
        if not path.is_file():
            tic = time.perf_counter()
            value = {**make(), "minutes": round((time.perf_counter() - tic) / 60, 3)}
            atomic_write_text(path, json.dumps(bench_samplers._finite(value), indent=2) + "\n")
        return json.loads(path.read_text())

    def make_teacher() -> dict:
        build_mini(root, size=64, per_type=args.per_type, val_per_type=args.val_per_type, composed=0, types=TYPES,
                   seed=0)
        if args.teacher is not None:
            return {"network": str(args.teacher), "daclip": str(args.daclip), "given": True}
        teacher, daclip, training = train_teacher(root, work, args)
        return {"network": str(teacher), "daclip": str(daclip), **training}

    trained = stage("teacher", make_teacher)
    teacher, daclip = Path(trained["network"]), Path(trained["daclip"])
    print(f"teacher: {trained}", flush=True)
    pipe, sde, _ = bench_samplers.build(teacher, daclip, args.device)
    pairs = [p for t in TYPES for p in paired_images(root, t, None)]

    def restore(label: str, pipeline, sampler, steps: int) -> dict:
        """Restore every pair (``bench_samplers.run_setting``); outputs kept in ``outputs/LABEL-NFE.pt``."""
        def make() -> dict:
            outs, secs = bench_samplers.run_setting(pipeline, sampler, steps, pairs, args.device, args.seed)
            torch.save(outs, work / "outputs" / f"{label}-{steps}.pt")
            print(f"{label:14s} NFE {steps:3d}: {sum(secs) / len(secs):.3f} s/img", flush=True)
            return {"setting": label, "nfe": steps, "s_per_img": sum(secs) / len(secs)}
        return stage(f"{label}-{steps}", make)

    runs = []
    if not args.skip_eval:
        runs.append(restore("posterior", pipe, create_sampler("irsde", **sde, mode="posterior"), 100))
        for nfe in args.nfe:
            for label, name, options in TEACHER:
                runs.append(restore(label, pipe, create_sampler(name, **sde, **options), nfe))
    distilled, student_runs, targets = {}, {}, {}
    for k in args.students:
        info = distilled[str(k)] = stage(f"distill-{k}{args.tag}",
                                         lambda k=k: distil(root, work, teacher, daclip, k, args))
        spipe, _, _ = bench_samplers.build(Path(info["network"]), daclip, args.device)
        student_runs[str(k)] = restore(f"student{args.tag}", spipe, spipe.sampler, k)
        runs.append(student_runs[str(k)])
        # what the student was taught to reproduce: the teacher sampler of its run, on the held-out images
        ts = info.get("teacher_sampler")  # absent in stages of earlier versions of this bench
        if ts is not None:
            targets[str(k)] = restore(f"target{args.tag}", pipe, create_sampler(ts["name"], **sde, **ts["options"]),
                                      info["teacher_steps"])
    if args.skip_eval:
        return 0

    score = Scorer([read_image(gt) for _, gt in pairs], args.lpips_weights)

    def outputs(run: dict):
        return torch.load(work / "outputs" / f"{run['setting']}-{run['nfe']}.pt", weights_only=True)

    teacher_100 = {**score(outputs(runs[0])), "s_per_img": runs[0]["s_per_img"]}
    lq = score([read_image(lq) for lq, _ in pairs])
    score.reference = outputs(runs[0])
    rows = [{"setting": "posterior", "nfe": 100, **teacher_100}]
    rows += [{**{k: r[k] for k in ("setting", "nfe")}, **score(outputs(r)), "s_per_img": r["s_per_img"]}
             for r in runs[1:]]
    teacher_at = {}
    for nfe in args.nfe:
        best = max((r for r in rows[1:] if r["nfe"] == nfe and not r["setting"].startswith("student")),
                   key=lambda r: r["psnr"])
        teacher_at[str(nfe)] = {"sampler": best["setting"],
                                **{k: best[k] for k in ("psnr", "ssim", "lpips", "s_per_img")}}
    student_keys = ("psnr", "ssim", "lpips", "psnr_vs_teacher100", "ssim_vs_teacher100", "lpips_vs_teacher100",
                    "s_per_img")
    students = {str(r["nfe"]): {k: r.get(k) for k in student_keys}
                for r in rows if r["setting"] == f"student{args.tag}"}
    for k, target in targets.items():  # the distillation's own fidelity: student vs its teacher's output
        agree = Scorer.agreement(outputs(student_runs[k]), outputs(target))
        students[k].update({"psnr_vs_target": agree["psnr"], "ssim_vs_target": agree["ssim"],
                            "target": {**score(outputs(target)), "sampler": distilled[k]["teacher_sampler"],
                                       "nfe": target["nfe"]}})
    stage_minutes = {"teacher": trained["minutes"],
                     "teacher_eval": round(sum(r["minutes"] for r in runs
                                               if not r["setting"].startswith("student")), 2),
                     "students": round(sum(d["minutes"] for d in distilled.values())
                                       + sum(r["minutes"] for r in runs if r["setting"].startswith("student"))
                                       + sum({(t["setting"], t["nfe"]): t["minutes"]  # one stage per setting
                                              for t in targets.values()}.values()), 2)}
    report = {"teacher_100": teacher_100, "teacher_at": teacher_at, "student": students, "lq": lq,
              "minutes": round(sum(stage_minutes.values()), 2), "stage_minutes": stage_minutes, "rows": rows,
              "training": {**{k: v for k, v in trained.items() if k not in ("network", "daclip")},
                           "students": distilled, "distill_overrides": args.distill},
              "images": len(pairs), "types": list(TYPES),
              "machine": {**bench_learning.machine_info(args.threads, args.device), "load_before": load_before,
                          "load_after": load_average()}}
    report["goal"] = goal(report)
    print_table(report)
    if args.json:
        atomic_write_text(args.json, json.dumps(bench_samplers._finite(report), indent=2) + "\n")
    return 0 if report["goal"]["met"] else 1


def print_table(report: dict) -> None:
    """The ladder as a text table (one row per rung)."""
    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    print(f"{'rung':24s} {'NFE':>4s} {'PSNR':>7s} {'SSIM':>7s} {'LPIPS':>7s} {'vs post-100':>11s} {'s/img':>7s}")
    ref = report["teacher_100"]
    print(f"{'posterior (reference)':24s} {100:4d} {ref['psnr']:7.2f} {ref['ssim']:7.4f} {fmt(ref['lpips'], '7.4f')} "
          f"{'-':>11s} {ref['s_per_img']:7.3f}")
    best = {(r["setting"], r["nfe"]): r for r in report["rows"]}
    for nfe, at in report["teacher_at"].items():
        r = best[(at["sampler"], int(nfe))]
        print(f"{'best teacher: ' + at['sampler']:24s} {int(nfe):4d} {r['psnr']:7.2f} {r['ssim']:7.4f} "
              f"{fmt(r['lpips'], '7.4f')} {fmt(r.get('psnr_vs_teacher100'), '11.2f')} {r['s_per_img']:7.3f}")
    for k, s in report["student"].items():
        print(f"{'student':24s} {int(k):4d} {s['psnr']:7.2f} {s['ssim']:7.4f} {fmt(s['lpips'], '7.4f')} "
              f"{fmt(s.get('psnr_vs_teacher100'), '11.2f')} {s['s_per_img']:7.3f}")
    for k, s in report["student"].items():
        if "psnr_vs_target" in s:
            t = s["target"]
            print(f"student {k} against what it was taught ({t['sampler']['name']}, {t['nfe']} NFE; "
                  f"{t['psnr']:.2f} dB vs GT): PSNR {s['psnr_vs_target']:.2f} dB, SSIM {s['ssim_vs_target']:.4f}")
    lq = report["lq"]
    print(f"{'LQ input':24s} {'':4s} {lq['psnr']:7.2f} {lq['ssim']:7.4f} {fmt(lq['lpips'], '7.4f')}")
    print(f"{report['minutes']:.1f} min; goal: {report['goal']}")


if __name__ == "__main__":
    sys.exit(main())
