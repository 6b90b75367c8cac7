"""What ``daclip-kit adapt`` found: ``OUT/report.json`` and the table it prints (torch-free).

The JSON object (:meth:`AdaptReport.to_dict`)::

    {"name": "cast", "base": "runs/irsde-tiny", "out": "adapted/cast",
     "preflight": {"analysis": {...}, "plan": {...}},
     "data": {"root": ..., "counts": {"train": 32, "val": 8}, ...},
     "new": {"input": {"psnr": 12.5, "ssim": 0.60}, "before": {...}, "after": {...}, "pairs": 8},
     "known": {"noisy": {"input": {...}, "before": {...}, "after": {...}}, ...},
     "forgetting": {"tolerance_db": 1.0, "ok": true, "lost": []},
     "naming": {"before": {...}, "after": {...}},
     "calibration": {...}, "runs": {"daclip": ..., "restorer": ..., "checkpoint": ...},
     "seconds": {"preflight": 1.2, ...}, "settings": {...}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io import atomic_write_text

REPORT_NAME = "report.json"
#: How far (dB) a known degradation's restored PSNR may fall below the base model's.
FORGET_TOLERANCE_DB = 1.0


def forgetting(inputs: Mapping[str, Mapping[str, float]], before: Mapping[str, Mapping[str, float]],
               after: Mapping[str, Mapping[str, float]], *, tolerance: float = FORGET_TOLERANCE_DB) -> dict[str, Any]:
    """The "nothing forgotten" check: each known degradation restored by the adapted model stays
    within ``tolerance`` dB (PSNR) of the base model and above its own input.

    Returns:
        ``{"tolerance_db", "ok", "lost": [{"degradation", "input", "before", "after", "drop", "why"}]}``.
    """
    lost = []
    for name in after:
        if name not in before or name not in inputs:
            continue
        lq, was, now = inputs[name]["psnr"], before[name]["psnr"], after[name]["psnr"]
        why = []
        if now < was - tolerance:
            why.append(f"{was - now:.2f} dB below the base model")
        if now <= lq:
            why.append(f"not above its input ({now:.2f} <= {lq:.2f} dB)")
        if why:
            lost.append({"degradation": name, "input": lq, "before": was, "after": now,
                         "drop": round(was - now, 4), "why": "; ".join(why)})
    return {"tolerance_db": tolerance, "ok": not lost, "lost": lost}


@dataclass
class AdaptReport:
    """Everything ``adapt`` measured and chose; see the module docstring for the JSON."""

    name: str
    base: str
    out: Path
    preflight: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    new: dict[str, Any] = field(default_factory=dict)
    known: dict[str, dict[str, Any]] = field(default_factory=dict)
    forgetting: dict[str, Any] = field(default_factory=dict)
    naming: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    runs: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.base, "out": str(self.out), "preflight": self.preflight,
                "data": self.data, "new": self.new, "known": self.known, "forgetting": self.forgetting,
                "naming": self.naming, "calibration": self.calibration, "runs": self.runs,
                "seconds": self.seconds, "settings": self.settings}

    def write(self) -> Path:
        """Write ``OUT/report.json`` atomically."""
        path = self.out / REPORT_NAME
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        return path

    def lines(self) -> list[str]:
        """The printed summary: one table of restoration before/after, then naming, calibration, time."""
        out = [f"{'degradation':<20} {'input':>13} {'base model':>13} {'adapted':>13}   (PSNR dB / SSIM, val pairs)"]

        def cell(score: Mapping[str, float] | None) -> str:
            return f"{score['psnr']:6.2f} / {score['ssim']:.3f}" if score else f"{'-':>13}"

        new = self.new
        out.append(f"{self.name + ' (new)':<20} {cell(new.get('input')):>13} {cell(new.get('before')):>13} "
                   f"{cell(new.get('after')):>13}")
        lost = {row["degradation"]: row for row in self.forgetting.get("lost", [])}
        for word, row in self.known.items():
            mark = f"   LOST: {lost[word]['why']}" if word in lost else ""
            out.append(f"{word:<20} {cell(row.get('input')):>13} {cell(row.get('before')):>13} "
                       f"{cell(row.get('after')):>13}{mark}")
        before, after = self.naming.get("before", {}), self.naming.get("after", {})
        out.append(f"DA-CLIP top-1 on the known words: {_mean_text(before, self.known)} before, "
                   f"{_mean_text(after, self.known)} after; on {self.name}: "
                   f"{_share(after.get('accuracy', {}).get(self.name))} after")
        flagged_before = before.get("unknown", {}).get(self.name)
        flagged_known = _mean(after.get("unknown", {}), self.known)
        out.append(f"unknown-degradation check: {self.name} flagged by the base model {_share(flagged_before)}; "
                   f"known val images flagged by the adapted model {_share(flagged_known)}")
        if self.calibration:
            c = self.calibration
            out.append(f"calibration: {c.get('statistic')} threshold {c.get('threshold', float('nan')):.4g} "
                       f"at {c.get('false_alarm_target', 0.05):.0%} false alarm on {c.get('val_images')} val images")
        plan = self.preflight.get("plan", {})
        if plan:
            out.append(f"preflight: objective {plan.get('objective')}, {plan.get('init')}, lr {plan.get('lr'):g}, "
                       f"new_share {plan.get('new_share')}")
        out.append("time: " + ", ".join(f"{k} {_duration(v)}" for k, v in self.seconds.items()))
        return out


def _mean(values: Mapping[str, float | None], names: Mapping[str, Any]) -> float | None:
    got = [v for k, v in values.items() if k in names and v is not None]
    return sum(got) / len(got) if got else None


def _mean_text(naming: Mapping[str, Any], names: Mapping[str, Any]) -> str:
    return _share(_mean(naming.get("accuracy", {}), names))


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
