"""Checking a data set in the official universal layout (``daclip-kit data check``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DaclipKitError, InputError
from .sources import expected_count
from .universal import (
    SPLITS,
    _key,
    csv_name,
    degradation_folders,
    read_captions_csv,
    scan_universal,
)


@dataclass
class CheckReport:
    """What :func:`check_universal` found.

    Attributes:
        rows: per split and degradation folder: ``found`` pairs, ``expected`` (Table 1 count or
            ``None``) and ``status`` (``ok``, ``fewer``, ``more``).
        problems: inconsistencies that make the set unusable as it is (missing CSV, unlisted images).
        notes: things worth a look that are not errors (pairs with different file names).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_universal(root: str | Path) -> CheckReport:
    """Check ``ROOT/<split>/<degradation>/{LQ,GT}`` and its ``daclip_<split>.csv`` files.

    Raises:
        InputError: ``root`` has neither ``train/`` nor ``val/``.
    """
    root = Path(root)
    splits = [s for s in SPLITS if (root / s).is_dir()]
    if not splits:
        raise InputError(f"{str(root)!r} has no train/ or val/ folder; expected ROOT/<split>/<degradation>/{{LQ,GT}}/.")
    report = CheckReport()
    for split in splits:
        try:
            groups = scan_universal(root, split, degradation_folders(root, split))
        except DaclipKitError as exc:
            report.problems.append(str(exc))
            continue
        lq_keys = {_key(p.lq) for g in groups.values() for p in g}  # split/degradation/LQ/name
        for name, pairs in groups.items():
            bad = [p.lq.name for p in pairs if p.lq.stem != p.gt.stem]  # 0001.jpg with 0001.png is a pair
            if bad:
                report.notes.append(f"{split}/{name}: {len(bad)} LQ/GT pairs have different stems (they are "
                                    f"paired by sorted order; check that this is intended), e.g. {bad[0]}")
            exp = expected_count(name, split)
            status = "ok" if exp is None or exp == len(pairs) else ("fewer" if len(pairs) < exp else "more")
            report.rows.append({"split": split, "degradation": name, "found": len(pairs), "expected": exp,
                                "status": status})
        csv_path = root / csv_name(split)
        if not csv_path.is_file():
            report.problems.append(f"{csv_name(split)} is missing; write it with `daclip-kit data caption {root}`")
            continue
        csv_rows = read_captions_csv(csv_path)
        listed = {_key(r.filepath) for r in csv_rows}
        unlisted = sorted(lq_keys - listed)
        total = sum(len(g) for g in groups.values())
        if len(csv_rows) != total or unlisted:
            report.problems.append(f"{csv_name(split)} has {len(csv_rows)} rows for {total} LQ images"
                                   + (f"; {len(unlisted)} LQ image(s) are not listed, e.g. {unlisted[0]}"
                                      if unlisted else ""))
    return report
