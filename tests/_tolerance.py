"""Tolerances for comparing float results, set from the precision of the computation.

Two machines (or two kernels on one machine) that evaluate the same float32 formula agree to a few
units in the last place (ulps), not bit for bit: exp, log, cos, tanh and pow are only faithfully
rounded (within 1 ulp, so two implementations can differ by 2), vectorised code sums in another
order, a compiler may fuse a multiply-add. The rules the tests follow:

* exact (``torch.equal``, ``atol=0``) only where the result is exact by construction: integers and
  integer grids, copies, the same deterministic op on the same input in the same process, tensors
  saved and loaded back;
* float32 values computed by the same formula elsewhere (the official code's recorded arrays):
  :func:`ulps` of the scale of the *operands* of the computation, ``n`` justified at the call. Where
  a subtraction cancels (``1 - exp(-x)`` for small ``x``), the error is ulps of the operands (1),
  not of the small result: compare a well-conditioned form (e.g. ``sigma ** 2``) or bound each
  entry (:func:`assert_within` with a tensor tolerance);
* network outputs against the official code: :data:`PARITY_ATOL`, the documented parity claim.
"""

from __future__ import annotations

import torch

#: float32 machine epsilon, 2**-23: one ulp of values in [1, 2); one ulp of ``x`` is at most ``EPS32 * |x|``.
EPS32 = float(torch.finfo(torch.float32).eps)

#: daclip-kit's documented parity with the official code (docs/daclip.md, docs/backbones.md): 1e-5.
PARITY_ATOL = 1e-5


def ulps(reference: torch.Tensor | float, n: float) -> float:
    """Absolute tolerance of ``n`` float32 ulps at the scale of ``reference``: ``n * EPS32 * max|reference|``.

    Args:
        reference: the values compared, or the operands they were computed from where a subtraction
            cancels (any shape, or a number).
        n: how many ulps the two computations may differ by, justified by the caller.

    Returns:
        A float, for ``atol=`` (with ``rtol=0``).
    """
    scale = float(torch.as_tensor(reference, dtype=torch.float64).abs().max())
    return n * EPS32 * scale


def assert_within(actual: torch.Tensor, expected: torch.Tensor, atol: torch.Tensor | float, msg: str = "") -> None:
    """Assert ``|actual - expected| <= atol`` entry by entry, ``atol`` a number or a tensor of bounds
    broadcastable to them (per-entry tolerances, e.g. where the conditioning varies along a schedule).

    Infinities must sit in the same places with the same sign; NaN fails.
    """
    assert actual.shape == expected.shape, f"{msg}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    actual, expected = actual.double(), expected.double()
    atol = torch.as_tensor(atol, dtype=torch.float64).expand_as(expected)
    same_inf = torch.isinf(expected) & (actual == expected)
    err = torch.where(same_inf, torch.zeros_like(expected), (actual - expected).abs())
    bad = ~(err <= atol)  # NaN counts as bad
    if bad.any():
        i = tuple(int(k) for k in torch.nonzero(bad)[0])
        raise AssertionError(f"{msg}: {int(bad.sum())} of {bad.numel()} entries off; at {i}: {float(actual[i])!r} vs "
                             f"{float(expected[i])!r}, |diff| {float(err[i]):.3g} > {float(atol[i]):.3g} allowed")
