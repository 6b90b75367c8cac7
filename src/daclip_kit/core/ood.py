""""Looks like none of the model's degradations": the out-of-distribution check of ``classify``.

The score of an image is its **maximum softmax probability** over the model's degradation words
(the probabilities ``classify`` reports). A model is *calibrated* on its own val set: the
threshold is the ``false_alarm``-quantile of the val images' scores (linear interpolation, as
``numpy.quantile``), so about that fraction of val images (images of the degradations it knows)
would be flagged. An image whose score is below the threshold is reported as
``unknown_degradation``.

A calibration holds for the labels it was made with: classifying against other labels
(``--labels``) gives no check. It also holds only for the weights it was measured on: it records
their digest (``state_dict_sha256``, :func:`daclip_kit.checkpoint.state_dict_sha256`), a
DA-CLIP folder whose weights have another digest is loaded uncalibrated, and saving other
weights drops it (or ``train daclip`` measures it again). A calibration without the digest
(written before it existed) is unverified: it is used, as then, with whatever weights it is
stored beside. Torch-free (run from the CLI and training alike).

Stored in the DA-CLIP folder's ``config.json`` under ``config.ood`` (:meth:`OodCalibration.to_dict`)::

    {"statistic": "max_prob", "threshold": 0.43, "false_alarm_target": 0.05,
     "val_false_alarm": 0.05, "val_images": 200, "labels": ["motion-blurry", ...],
     "detection": {"clean (val GT)": 0.81}, "state_dict_sha256": "9f2c...e1"}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

#: The only statistic: the largest class probability of the image.
STATISTIC = "max_prob"
#: The share of in-distribution (val) images flagged by default.
DEFAULT_FALSE_ALARM = 0.05
_KEYS = ("statistic", "threshold", "false_alarm_target", "val_false_alarm", "val_images", "labels", "detection",
         "state_dict_sha256")
_HEX = frozenset("0123456789abcdef")


def quantile(scores: Sequence[float], q: float) -> float:
    """The ``q``-quantile of ``scores`` with linear interpolation between order statistics
    (position ``q * (n - 1)`` in the sorted scores; ``numpy.quantile``'s default).

    Raises:
        ConfigError: no scores, a non-finite score, or ``q`` outside [0, 1].
    """
    values = sorted(float(s) for s in scores)
    if not values:
        raise ConfigError("Cannot calibrate on no scores: the val set has no images.")
    if not all(math.isfinite(v) for v in values):
        raise ConfigError("Cannot calibrate on NaN or infinite scores; check the model's weights.")
    if not 0.0 <= q <= 1.0:
        raise ConfigError(f"The false-alarm rate must be in [0, 1], got {q}.")
    pos = q * (len(values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (pos - lo) * (values[hi] - values[lo])


def flag_rate(scores: Sequence[float], threshold: float) -> float:
    """The share of ``scores`` below ``threshold`` (those :meth:`OodCalibration.flags`)."""
    scores = list(scores)
    return sum(float(s) < threshold for s in scores) / len(scores) if scores else 0.0


@dataclass(frozen=True)
class OodCalibration:
    """When a classification is "none of the known degradations".

    Attributes:
        threshold: images whose maximum probability is below it are flagged.
        labels: the candidate labels it was calibrated with (the model's degradation words).
        false_alarm_target: the quantile the threshold was taken at.
        val_false_alarm: the share of val images it flags (measured).
        val_images: how many val images it was calibrated on.
        detection: measured flag rates on out-of-distribution sets, ``{name: rate}``.
        statistic: ``"max_prob"``.
        state_dict_sha256: the digest of the weights it was measured on
            (:func:`daclip_kit.checkpoint.state_dict_sha256`); ``None``: not recorded (folders written
            before the digest existed), so not verifiable.
    """

    threshold: float
    labels: tuple[str, ...]
    false_alarm_target: float = DEFAULT_FALSE_ALARM
    val_false_alarm: float = 0.0
    val_images: int = 0
    detection: dict[str, float] = field(default_factory=dict)
    statistic: str = STATISTIC
    state_dict_sha256: str | None = None

    def flags(self, max_prob: float) -> bool:
        """Whether an image with this maximum class probability looks like none of the labels."""
        return max_prob < self.threshold

    def applies_to(self, labels: Sequence[str]) -> bool:
        """Whether this calibration holds for classifying against ``labels``."""
        return tuple(labels) == self.labels

    def measured_on(self, state_dict_sha256: str) -> bool:
        """Whether this calibration is known to hold for the weights of this digest (an unrecorded
        digest is not known to)."""
        return self.state_dict_sha256 is not None and self.state_dict_sha256 == state_dict_sha256

    def to_dict(self) -> dict[str, Any]:
        """The JSON object stored under ``config.ood`` (``state_dict_sha256`` only where recorded)."""
        out = {"statistic": self.statistic, "threshold": self.threshold,
               "false_alarm_target": self.false_alarm_target, "val_false_alarm": self.val_false_alarm,
               "val_images": self.val_images, "labels": list(self.labels), "detection": dict(self.detection)}
        if self.state_dict_sha256 is not None:
            out["state_dict_sha256"] = self.state_dict_sha256
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "ood") -> OodCalibration:
        """Read :meth:`to_dict`'s object back, strictly.

        An object without ``state_dict_sha256`` (written before it existed) reads as an unverified
        calibration (``state_dict_sha256=None``).

        Raises:
            ConfigError: not an object, an unknown key, or a value of the wrong kind (named).
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be an object, not {type(data).__name__}.")
        unknown = sorted(str(k) for k in data if k not in _KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(_KEYS)}.")
        if data.get("statistic", STATISTIC) != STATISTIC:
            raise ConfigError(f"{where}.statistic is {data.get('statistic')!r}; this daclip-kit knows {STATISTIC!r}.")

        def number(key: str, default: float | None = None) -> float:
            return _number(data.get(key, default), f"{where}.{key}")

        labels = data.get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(s, str) and s for s in labels):
            raise ConfigError(f"{where}.labels must be a non-empty list of words, got {labels!r}.")
        detection = data.get("detection", {})
        if not isinstance(detection, Mapping):
            raise ConfigError(f"{where}.detection must be an object {{name: rate}}.")
        digest = data.get("state_dict_sha256")
        if digest is not None and not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX):
            raise ConfigError(f"{where}.state_dict_sha256 must be the 64 lowercase hex digits of a SHA-256, got "
                              f"{digest!r}; calibrate the model again (`daclip-kit classify --calibrate`).")
        return cls(threshold=number("threshold"), labels=tuple(labels),
                   false_alarm_target=number("false_alarm_target", DEFAULT_FALSE_ALARM),
                   val_false_alarm=number("val_false_alarm", 0.0), val_images=int(number("val_images", 0)),
                   detection={str(k): _number(v, f"{where}.detection.{k}") for k, v in detection.items()},
                   state_dict_sha256=digest)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}.")
    return float(value)


def calibrate(val_scores: Sequence[float], labels: Sequence[str], *, false_alarm: float = DEFAULT_FALSE_ALARM,
              detection: Mapping[str, Sequence[float]] | None = None,
              state_dict_sha256: str | None = None) -> OodCalibration:
    """The calibration whose threshold flags a ``false_alarm`` share of the val images.

    Args:
        val_scores: the maximum class probability of each val image (in distribution).
        labels: the labels they were classified against.
        false_alarm: the quantile taken (0.05: about 5% of val images are flagged).
        detection: scores of out-of-distribution sets, ``{name: scores}``; their flag rates
            are recorded in ``detection``.
        state_dict_sha256: the digest of the weights that gave the scores
            (:func:`daclip_kit.checkpoint.state_dict_sha256`), recorded with the calibration.
    """
    threshold = quantile(val_scores, false_alarm)
    rates = {name: round(flag_rate(scores, threshold), 4) for name, scores in (detection or {}).items() if scores}
    return OodCalibration(threshold=threshold, labels=tuple(labels), false_alarm_target=false_alarm,
                          val_false_alarm=round(flag_rate(val_scores, threshold), 4), val_images=len(val_scores),
                          detection=rates, state_dict_sha256=state_dict_sha256)


def unknown_report(probs: Sequence[float], labels: Sequence[str],
                   calibration: OodCalibration | None) -> dict[str, Any]:
    """The fields ``classify`` and ``restore`` report for one image.

    Returns:
        ``{"unknown_degradation": bool or None, "ood_score": max probability, "ood_threshold": float
        or None}``; ``None`` where the model is not calibrated for ``labels``.
    """
    score = max(float(p) for p in probs)
    if calibration is None or not calibration.applies_to(labels):
        return {"unknown_degradation": None, "ood_score": round(score, 6), "ood_threshold": None}
    return {"unknown_degradation": bool(calibration.flags(score)), "ood_score": round(score, 6),
            "ood_threshold": round(calibration.threshold, 6)}


def warning_line(image: str, report: Mapping[str, Any]) -> str:
    """The one warning line of an image flagged by :func:`unknown_report`."""
    return (f"{image}: looks like none of the model's degradations (top probability "
            f"{report['ood_score']:.3f} < calibrated threshold {report['ood_threshold']:.3f}); "
            "the prediction is unreliable")
