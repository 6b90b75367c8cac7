"""Heun's method on the reverse-time SDE / probability-flow ODE of IR-SDE: the MRS paper's
second-order baseline. Registered as ``heun``; see :mod:`daclip_kit.samplers.heun.sampler`."""
