"""``daclip-kit adapt NAME --lq DIR --gt DIR --from MODEL --data ROOT --out OUT``: two folders of pairs
to a model that removes their degradation, keeps the known ones and knows what it does not know.

OUT is one model (restorer + its DA-CLIP + words + calibration) that ``restore --weights OUT``,
``classify --weights OUT``, ``push`` and ``export`` take as it is, with ``OUT/report.json`` (and the
table printed): see :mod:`daclip_kit.adapt.workflow`. The exit status is 0 when nothing known was
forgotten, 1 when OUT was written but a known degradation was lost (named, with how much).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from . import console


def configure(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("name", metavar="NAME", help="the new degradation's word (lowercase letters, digits, - and _)")
    p.add_argument("--lq", required=True, metavar="DIR", help="folder of degraded images")
    p.add_argument("--gt", required=True, metavar="DIR", help="folder of the clean images, same stems as --lq")
    p.add_argument("--from", dest="base", required=True, metavar="MODEL",
                   help="the model to adapt: a weights name (universal-ir), a released file, a run or checkpoint "
                        "folder, a model folder or hf://OWNER/NAME[@REV][/SUB]")
    p.add_argument("--data", required=True, metavar="ROOT",
                   help="data root of the known degradations (replayed so they are kept); NAME is added to it")
    p.add_argument("--out", required=True, metavar="OUT", help="folder of the adapted model (new or empty)")
    p.add_argument("--steps", type=int, default=2000, metavar="N", help="restorer training steps (default 2000)")
    p.add_argument("--daclip-steps", type=int, metavar="N",
                   help="DA-CLIP training steps (default: from --steps and the preflight's ratio)")
    split = p.add_mutually_exclusive_group()
    split.add_argument("--val", type=int, metavar="N", help="pairs held out for validation (default 10%%, at least 1)")
    split.add_argument("--val-fraction", type=float, metavar="F", help="share of the pairs held out, in [0, 1)")
    p.add_argument("--daclip-weights", metavar="REF", help="the DA-CLIP of a --from model that records none")
    choice = p.add_argument_group("preflight choices (default: chosen from the pairs, with the reason printed)")
    choice.add_argument("--objective", choices=("noise", "clean"), help="what the restorer predicts")
    choice.add_argument("--init", choices=("continue", "anew"), help="continue the --from restorer or start anew")
    choice.add_argument("--lr", type=float, metavar="LR", help="restorer learning rate")
    choice.add_argument("--new-share", type=float, metavar="S",
                        help="share of each batch from NAME; the rest replays the known degradations")
    p.add_argument("--daclip-set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override the DA-CLIP run's config (repeatable), e.g. optim.lr=1e-4")
    p.add_argument("--restorer-set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override the restorer run's config (repeatable), e.g. data.batch_size=8")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1")
    p.add_argument("--eval-steps", type=int, metavar="N",
                   help="sampler steps when restoring for validation and the report (default: the model's)")
    p.add_argument("--eval-limit", type=int, default=8, metavar="N",
                   help="val pairs per degradation restored for the report (default 8; 0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="replace NAME in the data root and an earlier adapted model in --out")
    p.add_argument("--captions", default="auto", metavar="auto|blip|none|FILE", help="captions, as `data add`")
    p.add_argument("--link", action="store_true", help="link the pairs into the data root instead of copying")
    p.add_argument("--skip-bad", action="store_true", help="leave out pairs with problems instead of refusing")
    p.add_argument("--weights-dir", action="append", default=[], metavar="DIR",
                   help="folder searched first for named weights (repeatable)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..adapt.workflow import AdaptSettings, adapt_model

    for flag, value in (("--daclip-steps", args.daclip_steps), ("--eval-steps", args.eval_steps)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}.")
    if args.eval_limit < 0:
        raise ConfigError(f"--eval-limit must be 0 (all) or more, got {args.eval_limit}.")
    choices = {k: v for k, v in (("objective", args.objective), ("init", args.init), ("lr", args.lr),
                                 ("new_share", args.new_share)) if v is not None}
    settings = AdaptSettings(
        name=args.name, lq=Path(args.lq), gt=Path(args.gt), base=args.base, root=Path(args.data), out=Path(args.out),
        steps=args.steps, daclip_steps=args.daclip_steps, val=args.val, val_fraction=args.val_fraction,
        daclip_weights=args.daclip_weights,
        choices=choices, daclip_set=tuple(args.daclip_set), restorer_set=tuple(args.restorer_set),
        device=args.device, eval_steps=args.eval_steps, eval_limit=args.eval_limit or None, seed=args.seed,
        overwrite=args.overwrite, captions=args.captions, link=args.link, skip_bad=args.skip_bad,
        search_dirs=tuple(args.weights_dir))
    err = console.stderr()
    say = (lambda line: None) if args.json else (lambda line: err.print(line, markup=False, highlight=False))
    report = adapt_model(settings, say=say)
    if args.json:
        console.print_json(report.to_dict())
    else:
        out = console.stdout()
        for line in report.lines():
            out.print(line, markup=False, highlight=False)
        out.print(f"adapted model: {report.out} (report: {report.out / 'report.json'})", markup=False,
                  highlight=False)
    for lost in report.forgetting.get("lost", []):
        err.print(f"warning: {lost['degradation']} was lost: {lost['why']}", markup=False, highlight=False)
    return 0 if report.forgetting.get("ok", True) else 1
