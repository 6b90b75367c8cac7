""""Looks like none of the model's degradations": the out-of-distribution check of ``classify``.

The score of an image lives in DA-CLIP's **degradation-embedding space** (the L2-normalised
controller embedding that ``classify`` compares with the words' text features):

* ``"knn"`` (the default): the Euclidean distance from the image's normalised embedding to its
  ``k``-th nearest neighbour among the model's own *reference embeddings* (deep nearest neighbours,
  Sun et al., ICML 2022). The reference bank is the val images (each val image is scored with
  itself left out) plus, where given, training images.
* ``"mahalanobis"``: the smallest Mahalanobis distance to a degradation's mean, with one covariance
  shared by the degradations (Lee et al., NeurIPS 2018), shrunk towards a scaled identity
  (Ledoit-Wolf) so that a few hundred images in 512 dimensions give a usable precision matrix. The
  val images are scored by cross-fitting (the means and covariance are fitted without them).
* ``"max_prob"``: the largest class probability (a calibration written before the two above; still
  read and applied, but it catches few unknown degradations).

A model is *calibrated* on its own val set: the threshold is the quantile of the val images' scores
(linear interpolation, as ``numpy.quantile``) that flags about ``false_alarm`` of them (the upper
``false_alarm`` tail for the two distances, the lower one for ``max_prob``). An image beyond the
threshold is reported as ``unknown_degradation``.

The distances need the reference *state* (the bank, or the means and precision matrix): it lives
with the model, in the DA-CLIP folder's ``ood.safetensors`` (:data:`STATE_FILE`) beside
``model.safetensors``, and ``config.ood`` records its digest (``state_sha256``): a folder whose state
file is missing or does not match is loaded uncalibrated
(:func:`daclip_kit.embedders.daclip.convert.load_daclip`).

A calibration holds for the labels it was made with: classifying against other labels
(``--labels``) gives no check. It also holds only for the weights it was measured on: it records
their digest (``state_dict_sha256``, :func:`daclip_kit.checkpoint.state_dict_sha256`), a
DA-CLIP folder whose weights have another digest is loaded uncalibrated, and saving other
weights drops it (or ``train daclip`` measures it again). A calibration without the digest
(written before it existed) is unverified: it is used, as then, with whatever weights it is
stored beside. Importing this module does not import torch (the CLI imports it); scoring and
fitting import it when called.

Stored in the DA-CLIP folder's ``config.json`` under ``config.ood`` (:meth:`OodCalibration.to_dict`)::

    {"statistic": "knn", "k": 1, "threshold": 0.61, "false_alarm_target": 0.05,
     "val_false_alarm": 0.05, "val_images": 200, "reference_images": 200,
     "labels": ["motion-blurry", ...], "detection": {"clean (val GT)": 0.81},
     "state_sha256": "40d1...9a", "state_dict_sha256": "9f2c...e1"}
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    import torch

#: The k-th nearest-neighbour distance in the degradation-embedding space (the default).
KNN = "knn"
#: The class-conditional Mahalanobis distance in the degradation-embedding space.
MAHALANOBIS = "mahalanobis"
#: The largest class probability (calibrations written before the embedding-space scores).
MAX_PROB = "max_prob"
#: The statistics this daclip-kit reads.
STATISTICS = (KNN, MAHALANOBIS, MAX_PROB)
#: The statistic new calibrations use (measured in ``benchmarks/bench_ood.py``, docs/daclip.md).
DEFAULT_STATISTIC = KNN
#: Kept for code that imported the old single statistic's name.
STATISTIC = MAX_PROB
#: The share of in-distribution (val) images flagged by default.
DEFAULT_FALSE_ALARM = 0.05
#: The file of a DA-CLIP folder holding the reference state of a distance calibration.
STATE_FILE = "ood.safetensors"
#: The tensors of each statistic's state: name -> number of dimensions.
STATE_TENSORS: dict[str, dict[str, int]] = {KNN: {"bank": 2}, MAHALANOBIS: {"means": 2, "precision": 2}}
#: How the statistics are named in messages.
DESCRIPTION = {KNN: "k-NN distance (k={k}) in the degradation-embedding space",
               MAHALANOBIS: "Mahalanobis distance to the nearest degradation in the degradation-embedding space",
               MAX_PROB: "top probability"}
#: Cross-fitting folds of a Mahalanobis calibration on val images.
FOLDS = 5
_KEYS = ("statistic", "threshold", "false_alarm_target", "val_false_alarm", "val_images", "labels", "detection",
         "state_dict_sha256", "k", "reference_images", "state_sha256", "val_groups")
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


def flag_rate(scores: Sequence[float], threshold: float, *, higher: bool = False) -> float:
    """The share of ``scores`` flagged at ``threshold``: those below it (``max_prob``), or with
    ``higher`` those above it (the distances)."""
    scores = list(scores)
    if not scores:
        return 0.0
    return sum((float(s) > threshold) if higher else (float(s) < threshold) for s in scores) / len(scores)


def higher_is_unknown(statistic: str) -> bool:
    """Whether a larger score of ``statistic`` means "further from the known degradations"."""
    return statistic != MAX_PROB


@dataclass(frozen=True)
class OodCalibration:
    """When a classification is "none of the known degradations".

    Attributes:
        threshold: images whose score is beyond it are flagged (above it for the distances, below
            it for ``max_prob``).
        labels: the candidate labels it was calibrated with (the model's degradation words).
        false_alarm_target: the share of val images the threshold was chosen to flag.
        val_false_alarm: the share of val images it flags (measured).
        val_images: how many val images it was calibrated on.
        detection: measured flag rates on out-of-distribution sets, ``{name: rate}``.
        statistic: ``"knn"``, ``"mahalanobis"`` or ``"max_prob"``.
        state_dict_sha256: the digest of the weights it was measured on
            (:func:`daclip_kit.checkpoint.state_dict_sha256`); ``None``: not recorded (folders written
            before the digest existed), so not verifiable.
        k: the neighbour rank of ``"knn"`` (``None`` otherwise).
        reference_images: how many embeddings the reference state was fitted on.
        state_sha256: the digest of :attr:`state` (recorded in ``config.ood``; the state file must match).
        val_groups: how many groups the val images were left out in where their source photos were
            known (each val image scored without every image of its own photo, so the threshold is
            the spread between photos, what a user's new photo meets; an image of no known photo is
            a group of its own); ``None``: each image left out alone.
        state: the reference tensors (``{"bank": (N, D)}`` for ``"knn"``, ``{"means": (C, D),
            "precision": (D, D)}`` for ``"mahalanobis"``; on the CPU, float32), ``None`` for
            ``"max_prob"`` or where only ``config.ood`` was read. Not compared (its digest is).
    """

    threshold: float
    labels: tuple[str, ...]
    false_alarm_target: float = DEFAULT_FALSE_ALARM
    val_false_alarm: float = 0.0
    val_images: int = 0
    detection: dict[str, float] = field(default_factory=dict)
    statistic: str = MAX_PROB
    state_dict_sha256: str | None = None
    k: int | None = None
    reference_images: int = 0
    state_sha256: str | None = None
    state: Mapping[str, torch.Tensor] | None = field(default=None, compare=False, repr=False)
    val_groups: int | None = None

    @property
    def uses_embedding(self) -> bool:
        """Whether the score is measured on the image's degradation embedding (not on probabilities)."""
        return self.statistic != MAX_PROB

    @property
    def description(self) -> str:
        """What the score is, in words (the warning line's)."""
        return DESCRIPTION[self.statistic].format(k=self.k)

    def flags(self, score: float) -> bool:
        """Whether an image with this score looks like none of the labels."""
        return score > self.threshold if higher_is_unknown(self.statistic) else score < self.threshold

    def applies_to(self, labels: Sequence[str]) -> bool:
        """Whether this calibration holds for classifying against ``labels``."""
        return tuple(labels) == self.labels

    def measured_on(self, state_dict_sha256: str) -> bool:
        """Whether this calibration is known to hold for the weights of this digest (an unrecorded
        digest is not known to)."""
        return self.state_dict_sha256 is not None and self.state_dict_sha256 == state_dict_sha256

    def scores(self, embeddings: torch.Tensor) -> list[float]:
        """The distance scores of ``(B, D)`` degradation embeddings (normalised here).

        Raises:
            ConfigError: a ``max_prob`` calibration (scored on probabilities), or no state loaded.
        """
        if not self.uses_embedding:
            raise ConfigError("A max_prob calibration scores the class probabilities, not an embedding; use "
                              "unknown_report(probs, ...).")
        if self.state is None:
            raise ConfigError(f"This {self.statistic} calibration has no reference state (the {STATE_FILE} file "
                              "of its DA-CLIP folder); load the folder with load_daclip, or calibrate again.")
        if self.statistic == KNN:
            assert self.k is not None  # from_dict and calibrate_embeddings set it
            return knn_scores(embeddings, self.state["bank"], self.k).tolist()
        return mahalanobis_scores(embeddings, self.state["means"], self.state["precision"]).tolist()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object stored under ``config.ood`` (``state_dict_sha256`` only where recorded;
        the state itself goes to :data:`STATE_FILE`)."""
        out: dict[str, Any] = {"statistic": self.statistic, "threshold": self.threshold,
                               "false_alarm_target": self.false_alarm_target,
                               "val_false_alarm": self.val_false_alarm, "val_images": self.val_images,
                               "labels": list(self.labels), "detection": dict(self.detection)}
        if self.uses_embedding:
            out["reference_images"] = self.reference_images
            out["state_sha256"] = self.state_sha256
            if self.k is not None:
                out["k"] = self.k
            if self.val_groups is not None:
                out["val_groups"] = self.val_groups
        if self.state_dict_sha256 is not None:
            out["state_dict_sha256"] = self.state_dict_sha256
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "ood", *,
                  state: Mapping[str, torch.Tensor] | None = None) -> OodCalibration:
        """Read :meth:`to_dict`'s object back, strictly, with its reference ``state`` where given.

        An object without ``state_dict_sha256`` (written before it existed) reads as an unverified
        calibration (``state_dict_sha256=None``); one without ``statistic`` is a ``max_prob`` one.

        Raises:
            ConfigError: not an object, an unknown key or statistic, a value of the wrong kind
                (named), or a ``state`` that is not the one whose digest it records.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be an object, not {type(data).__name__}.")
        unknown = sorted(str(k) for k in data if k not in _KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(_KEYS)}.")
        statistic = data.get("statistic", MAX_PROB)
        if statistic not in STATISTICS:
            raise ConfigError(f"{where}.statistic is {statistic!r}; this daclip-kit knows {', '.join(STATISTICS)}. "
                              "Upgrade daclip-kit, or calibrate the model again (`daclip-kit classify --calibrate`).")

        def number(key: str, default: float | None = None) -> float:
            return _number(data.get(key, default), f"{where}.{key}")

        labels = data.get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(s, str) and s for s in labels):
            raise ConfigError(f"{where}.labels must be a non-empty list of words, got {labels!r}.")
        detection = data.get("detection", {})
        if not isinstance(detection, Mapping):
            raise ConfigError(f"{where}.detection must be an object {{name: rate}}.")
        digest = _digest(data.get("state_dict_sha256"), f"{where}.state_dict_sha256")
        k = state_sha256 = None
        if statistic != MAX_PROB:
            state_sha256 = _digest(data.get("state_sha256"), f"{where}.state_sha256")
            if state_sha256 is None:
                raise ConfigError(f"{where}.state_sha256 is missing: a {statistic} calibration records the digest of "
                                  f"its {STATE_FILE}; calibrate the model again (`daclip-kit classify --calibrate`).")
        if statistic == KNN:
            k_value = data.get("k")
            if isinstance(k_value, bool) or not isinstance(k_value, int) or k_value < 1:
                raise ConfigError(f"{where}.k must be a positive whole number (the neighbour rank), got {k_value!r}.")
            k = k_value
        elif "k" in data:
            raise ConfigError(f"{where}.k goes only with the knn statistic, not {statistic!r}; remove it.")
        groups = data.get("val_groups")
        if groups is not None and (statistic == MAX_PROB or isinstance(groups, bool) or not isinstance(groups, int)
                                   or groups < 2):
            raise ConfigError(f"{where}.val_groups must be a whole number of at least 2 (the val images' source "
                              f"photos) on a knn or mahalanobis calibration, got {groups!r}; remove it.")
        if state is not None:
            state = check_state(statistic, state, where=f"{where} ({STATE_FILE})", expected_sha256=state_sha256)
        return cls(threshold=number("threshold"), labels=tuple(labels),
                   false_alarm_target=number("false_alarm_target", DEFAULT_FALSE_ALARM),
                   val_false_alarm=number("val_false_alarm", 0.0), val_images=int(number("val_images", 0)),
                   detection={str(k): _number(v, f"{where}.detection.{k}") for k, v in detection.items()},
                   statistic=statistic, state_dict_sha256=digest, k=k,
                   reference_images=int(number("reference_images", 0)), state_sha256=state_sha256, state=state,
                   val_groups=groups)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}.")
    return float(value)


def _digest(value: Any, where: str) -> str | None:
    if value is not None and not (isinstance(value, str) and len(value) == 64 and set(value) <= _HEX):
        raise ConfigError(f"{where} must be the 64 lowercase hex digits of a SHA-256, got {value!r}; calibrate the "
                          "model again (`daclip-kit classify --calibrate`).")
    return value


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """The digest of a reference state (as :func:`daclip_kit.checkpoint.state_dict_sha256` of its tensors)."""
    from ..checkpoint import state_dict_sha256

    return state_dict_sha256(state)


def check_state(statistic: str, state: Mapping[str, Any], *, where: str = STATE_FILE, dim: int | None = None,
                expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """``state`` as float32 CPU tensors when it holds exactly the tensors ``statistic`` needs, of
    consistent shapes (``dim``: the embedding size they must have), finite, and (``expected_sha256``)
    of that digest.

    Raises:
        ConfigError: the problem, named, with the fix (calibrate again).
    """
    import torch

    fix = "calibrate the model again (`daclip-kit classify --calibrate DATA_ROOT --weights MODEL`)"
    wanted = STATE_TENSORS.get(statistic)
    if wanted is None:
        raise ConfigError(f"{where}: a {statistic!r} calibration has no reference state.")
    if set(state) != set(wanted):
        raise ConfigError(f"{where}: a {statistic} state holds the tensors {', '.join(sorted(wanted))}, not "
                          f"{', '.join(sorted(map(str, state))) or 'none'}; {fix}.")
    if not all(isinstance(t, torch.Tensor) and t.dim() == wanted[name] and t.is_floating_point()
               for name, t in state.items()):
        raise ConfigError(f"{where}: the {statistic} state's tensors must be floating-point matrices; {fix}.")
    out = {name: t.detach().to("cpu", torch.float32).contiguous() for name, t in state.items()}
    widths = {t.shape[-1] for t in out.values()} | ({out["precision"].shape[0]} if "precision" in out else set())
    if len(widths) != 1 or any(t.shape[0] == 0 for t in out.values()) or (dim is not None and widths != {dim}):
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in sorted(out.items()))
        raise ConfigError(f"{where}: the {statistic} state's shapes ({shapes}) do not fit "
                          f"{f'{dim}-dimensional embeddings' if dim else 'one embedding size'}; {fix}.")
    if not all(bool(torch.isfinite(t).all()) for t in out.values()):
        raise ConfigError(f"{where}: the {statistic} state holds NaN or infinite values; {fix}.")
    if expected_sha256 is not None and state_sha256(out) != expected_sha256:
        raise ConfigError(f"{where}: the reference state is not the one the calibration was measured with (its digest "
                          f"differs from state_sha256 {expected_sha256[:12]}...); {fix}.")
    return out


# -- the embedding-space statistics ---------------------------------------------------------------

def _normalized(embeddings: torch.Tensor) -> torch.Tensor:
    import torch

    x = embeddings.detach().to("cpu", torch.float32)
    if x.dim() == 1:
        x = x[None]
    return torch.nn.functional.normalize(x, dim=-1)


def knn_scores(queries: torch.Tensor, bank: torch.Tensor, k: int, *, leave_one_out: bool = False,
               groups: Sequence[str] | None = None) -> torch.Tensor:
    """The Euclidean distance of each normalised query to its ``k``-th nearest normalised bank row.

    Args:
        queries: ``(B, D)`` embeddings.
        bank: ``(N, D)`` reference embeddings.
        k: the neighbour rank (1: the nearest); at most the bank's size (less the rows left out).
        leave_one_out: the queries are the bank's first ``B`` rows, each scored without itself.
        groups: with ``leave_one_out``, the group (source photo) of each query: a query is scored
            without every one of the first ``B`` bank rows of its group.

    Raises:
        ConfigError: ``k`` larger than the neighbours there are.
    """
    import torch

    q, b = _normalized(queries), _normalized(bank)
    left_out = 0
    if leave_one_out:
        left_out = 1 if groups is None else max(Counter(groups).values(), default=0)
    available = len(b) - left_out
    if not 1 <= k <= available:
        what = " outside the scored image's photo" if groups is not None else (
            " other than the one scored" if leave_one_out else "")
        raise ConfigError(f"The kNN score needs 1 <= k <= {available} (the reference images{what}), got k={k}; "
                          "lower k or calibrate on more val images.")
    dist = torch.cdist(q, b)
    if leave_one_out:
        if groups is None:
            idx = torch.arange(len(q))
            dist[idx, idx] = float("inf")
        else:
            number = {g: i for i, g in enumerate(sorted(set(groups)))}
            index = torch.tensor([number[g] for g in groups])
            dist[:, : len(q)].masked_fill_(index[:, None] == index[None, :], float("inf"))
    return dist.kthvalue(k, dim=1).values


def fit_mahalanobis(embeddings: torch.Tensor, classes: Sequence[str]) -> dict[str, torch.Tensor]:
    """Class means and the precision of one shared covariance of normalised ``embeddings``.

    The covariance of the class-centred embeddings is shrunk towards ``trace / D`` times the identity
    with the Ledoit-Wolf intensity (a closed form: the estimation noise of the sample covariance over
    its spread around the target), so it is invertible with fewer images than dimensions.

    Returns:
        ``{"means": (C, D), "precision": (D, D)}``, classes in sorted order.

    Raises:
        ConfigError: fewer than two embeddings, or ``classes`` of another length.
    """
    import torch

    x = _normalized(embeddings).double()
    if len(classes) != len(x) or len(x) < 2:
        raise ConfigError(f"The Mahalanobis statistic needs at least two embeddings with one class each, got "
                          f"{len(x)} embeddings and {len(classes)} classes.")
    names = sorted(set(classes))
    index = torch.tensor([names.index(c) for c in classes])
    means = torch.stack([x[index == i].mean(dim=0) for i in range(len(names))])
    centred = x - means[index]
    n, d = centred.shape
    cov = centred.T @ centred / n
    mu = float(torch.trace(cov)) / d
    target_spread = float(((cov - mu * torch.eye(d, dtype=cov.dtype)) ** 2).sum())
    norms = (centred ** 2).sum(dim=1)
    # sum over rows of ||x x^T - S||_F^2 = ||x||^4 - 2 x^T S x + ||S||_F^2
    noise = float((norms ** 2 - 2 * ((centred @ cov) * centred).sum(dim=1)).sum() + n * (cov ** 2).sum()) / n ** 2
    shrink = 1.0 if target_spread <= 0 else min(1.0, max(0.0, noise / target_spread))
    shrunk = (1 - shrink) * cov + shrink * max(mu, 1e-12) * torch.eye(d, dtype=cov.dtype)
    precision = torch.linalg.inv(shrunk)
    return {"means": means.float(), "precision": ((precision + precision.T) / 2).float()}


def mahalanobis_scores(queries: torch.Tensor, means: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """The Mahalanobis distance of each normalised query to the nearest class mean."""
    import torch

    q = _normalized(queries).double()
    diff = q[:, None, :] - means.double()[None]
    squared = torch.einsum("bcd,de,bce->bc", diff, precision.double(), diff)
    return squared.clamp_min(0).min(dim=1).values.sqrt().float()


def _folds(classes: Sequence[str], folds: int) -> list[int]:
    """A fold per item, dealt round-robin within each class (stratified, deterministic)."""
    seen: dict[str, int] = {}
    out = []
    for c in classes:
        out.append(seen.get(c, 0) % folds)
        seen[c] = seen.get(c, 0) + 1
    return out


def _group_folds(groups: Sequence[str], folds: int) -> list[int]:
    """A fold per item with whole groups to a fold (dealt round-robin over the sorted group names)."""
    number = {g: i for i, g in enumerate(sorted(set(groups)))}
    return [number[g] % folds for g in groups]


def reference_scores(statistic: str, val: torch.Tensor, val_classes: Sequence[str], *,
                     reference: torch.Tensor | None = None, reference_classes: Sequence[str] = (),
                     k: int | None = None,
                     groups: Sequence[str] | None = None) -> tuple[list[float], dict[str, torch.Tensor]]:
    """The honest scores of the val embeddings and the state fitted on all reference embeddings.

    The reference set is the val embeddings plus ``reference`` (e.g. training images). A val image is
    never its own reference: for ``"knn"`` it is left out of the bank when scored; for
    ``"mahalanobis"`` it is scored by a fit without its fold (:data:`FOLDS` stratified folds). With
    ``groups`` (the source photo of each val image, at least two) every val image of the same photo
    is left out with it (``"mahalanobis"``: the folds are whole photos), so a score is what an image
    of a photo outside the reference set gets.
    """
    import torch

    extra = reference if reference is not None else val.new_zeros(0, val.shape[-1])
    bank = torch.cat([_normalized(val), _normalized(extra)]) if len(extra) else _normalized(val)
    if statistic == KNN:
        assert k is not None
        return knn_scores(val, bank, k, leave_one_out=True, groups=groups).tolist(), {"bank": bank.contiguous()}
    if statistic != MAHALANOBIS:
        raise ConfigError(f"{statistic!r} has no reference state; the embedding statistics are {KNN}, {MAHALANOBIS}.")
    classes = [*val_classes, *reference_classes]
    if len(classes) != len(bank):
        raise ConfigError("Give one degradation word per reference embedding (val and reference alike).")
    fold_of = _folds(list(val_classes), FOLDS) if groups is None else _group_folds(groups, FOLDS)
    scores = [0.0] * len(val)
    n_val = len(val)
    for f in sorted(set(fold_of)):
        held = [i for i in range(n_val) if fold_of[i] == f]
        kept = [i for i in range(len(bank)) if i >= n_val or fold_of[i] != f]
        if len(kept) < 2:  # a val set too small to hold a fold out: score on the whole fit
            kept = list(range(len(bank)))
        fit = fit_mahalanobis(bank[kept], [classes[i] for i in kept])
        for i, s in zip(held, mahalanobis_scores(bank[held], fit["means"], fit["precision"]).tolist(), strict=True):
            scores[i] = s
    return scores, fit_mahalanobis(bank, classes)


def default_k(reference_images: int, smallest_class: int | None = None) -> int:
    """The neighbour rank used when none is given: half the square root of the reference set's size
    (28 images: 3, 84: 5, 1,000: 16), at most 50 (Sun et al.'s k for CIFAR-10's 50,000 images) and
    at most ``smallest_class - 1`` (a known image's k-th neighbour, itself left out, can then be one
    of its own degradation), at least 1. Measured on the tiny stand-in (``benchmarks/bench_ood.py``):
    k of 1 to 3 was best on 28 val images (4 per degradation), 5 on 84."""
    k = min(50, round(math.sqrt(max(reference_images, 0)) / 2))
    if smallest_class is not None:
        k = min(k, smallest_class - 1)
    return max(1, k)


def _fewest_outside(classes: Sequence[str], groups: Sequence[str], reference_classes: Sequence[str]) -> int:
    """The fewest images of a val image's own degradation outside its photo (reference ones
    included): the largest ``k`` at which its ``k``-th neighbour can still be one of them, at least 1."""
    total = Counter([*classes, *reference_classes])
    same = Counter(zip(classes, groups, strict=True))
    return max(1, min(total[c] - same[(c, g)] for c, g in zip(classes, groups, strict=True)))


def calibrate_embeddings(val: torch.Tensor, val_classes: Sequence[str], labels: Sequence[str], *,
                         statistic: str = DEFAULT_STATISTIC, reference: torch.Tensor | None = None,
                         reference_classes: Sequence[str] = (), k: int | None = None,
                         false_alarm: float = DEFAULT_FALSE_ALARM,
                         detection: Mapping[str, torch.Tensor] | None = None,
                         state_dict_sha256: str | None = None,
                         groups: Sequence[str] | None = None) -> OodCalibration:
    """The embedding-space calibration whose threshold flags a ``false_alarm`` share of the val images.

    Args:
        val: ``(N, D)`` degradation embeddings of the val images (in distribution; normalised here).
        val_classes: the degradation word of each val image.
        labels: the labels the model classifies against (its words).
        statistic: ``"knn"`` or ``"mahalanobis"``.
        reference: more reference embeddings (e.g. of training images), added to the bank / fit.
        reference_classes: their words (needed by ``"mahalanobis"``).
        k: the neighbour rank of ``"knn"`` (default :func:`default_k` of the reference size).
        false_alarm: the share of val images flagged (0.05: about 5%).
        detection: embeddings of out-of-distribution sets, ``{name: (M, D)}``; their flag rates
            are recorded in ``detection``.
        state_dict_sha256: the digest of the weights that gave the embeddings.
        groups: the source photo of each val image (:func:`daclip_kit.data.mini.source_photo`), or
            ``None``; used where there are at least two, so that each val image is scored without
            its whole photo (:func:`reference_scores`) and recorded as ``val_groups``.

    Raises:
        ConfigError: no val embeddings, an unknown statistic, an impossible ``k``, or ``groups``
            of another length.
    """
    if len(val) == 0:
        raise ConfigError("Cannot calibrate on no scores: the val set has no images.")
    if len(val_classes) != len(val):
        raise ConfigError(f"Give one degradation word per val embedding ({len(val)}), got {len(val_classes)}.")
    if groups is not None and len(groups) != len(val):
        raise ConfigError(f"Give one source photo per val embedding ({len(val)}), got {len(groups)}.")
    if groups is not None and len(set(groups)) < 2:
        groups = None  # one photo: nothing to leave out beyond the image itself
    size = len(val) + (len(reference) if reference is not None else 0)
    if statistic == KNN:
        counts = Counter([*val_classes, *reference_classes])
        if k is None:
            k = default_k(size, min(counts.values()))
            if groups is not None:
                k = min(k, _fewest_outside(val_classes, groups, reference_classes))
    elif k is not None:
        raise ConfigError(f"k goes only with the knn statistic, not {statistic!r}.")
    scores, state = reference_scores(statistic, val, val_classes, reference=reference,
                                     reference_classes=reference_classes, k=k, groups=groups)
    threshold = quantile(scores, 1.0 - false_alarm)
    cal = OodCalibration(threshold=threshold, labels=tuple(labels), false_alarm_target=false_alarm,
                         val_false_alarm=round(flag_rate(scores, threshold, higher=True), 4), val_images=len(scores),
                         statistic=statistic, state_dict_sha256=state_dict_sha256, k=k, reference_images=size,
                         state_sha256=state_sha256(state), state=state,
                         val_groups=len(set(groups)) if groups is not None else None)
    rates = {name: round(flag_rate(cal.scores(x), threshold, higher=True), 4)
             for name, x in (detection or {}).items() if len(x)}
    return replace(cal, detection=rates)


def calibrate(val_scores: Sequence[float], labels: Sequence[str], *, false_alarm: float = DEFAULT_FALSE_ALARM,
              detection: Mapping[str, Sequence[float]] | None = None,
              state_dict_sha256: str | None = None) -> OodCalibration:
    """The ``max_prob`` calibration whose threshold flags a ``false_alarm`` share of the val images
    (the statistic of older calibrations; new ones are :func:`calibrate_embeddings`).

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


def unknown_report(probs: Sequence[float], labels: Sequence[str], calibration: OodCalibration | None,
                   embedding: torch.Tensor | None = None) -> dict[str, Any]:
    """The fields ``classify`` and ``restore`` report for one image.

    Args:
        probs: its class probabilities over ``labels``.
        labels: the labels classified against.
        calibration: the model's calibration, or ``None``.
        embedding: its ``(D,)`` degradation embedding (needed by the embedding-space statistics;
            without it such a calibration gives no verdict).

    Returns:
        ``{"unknown_degradation": bool or None, "ood_score": float, "ood_threshold": float or None,
        "ood_statistic": str}``: the score of the calibration's statistic (the top probability
        where there is no calibration); ``None`` verdict and threshold where the model is not
        calibrated for ``labels``.
    """
    top = max(float(p) for p in probs)
    score: float | None = top
    if calibration is not None and calibration.uses_embedding:
        score = calibration.scores(embedding)[0] if embedding is not None and calibration.state is not None else None
    if calibration is None or score is None or not calibration.applies_to(labels):
        return {"unknown_degradation": None, "ood_score": round(top, 6), "ood_threshold": None,
                "ood_statistic": MAX_PROB}
    return {"unknown_degradation": bool(calibration.flags(score)), "ood_score": round(score, 6),
            "ood_threshold": round(calibration.threshold, 6), "ood_statistic": calibration.statistic}


def warning_line(image: str, report: Mapping[str, Any]) -> str:
    """The one warning line of an image flagged by :func:`unknown_report`: what the score is, and
    how it compares with the calibrated threshold."""
    statistic = report.get("ood_statistic", MAX_PROB)
    if statistic == MAX_PROB:
        what, sign = "top probability", "<"
    else:
        what, sign = ("k-NN distance in the degradation-embedding space" if statistic == KNN
                      else "Mahalanobis distance in the degradation-embedding space"), ">"
    return (f"{image}: looks like none of the model's degradations ({what} {report['ood_score']:.3f} {sign} "
            f"calibrated threshold {report['ood_threshold']:.3f}); the prediction is unreliable")
