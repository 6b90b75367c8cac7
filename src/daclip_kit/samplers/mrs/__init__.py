"""MR Sampler (MRS; Li et al., ICLR 2025): a fast ODE/SDE solver for mean-reverting diffusion.

Registered as ``mrs``; see :mod:`daclip_kit.samplers.mrs.sampler` and ``docs/samplers.md``.
"""
