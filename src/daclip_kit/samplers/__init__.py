"""The built-in samplers of diffusion restoration networks, built by name with ``daclip_kit.create_sampler``:

* ``irsde``: IR-SDE's mean-reverting SDE, the paper's sampler (posterior, reverse-SDE or ODE steps).
* ``mrs``: MR Sampler (Li et al., ICLR 2025), a fast ODE/SDE multistep solver for the same networks (5-20 steps).
* ``heun``: Heun's second-order method on the reverse SDE / probability-flow ODE, the MRS paper's baseline.

All are stateless (``daclip_kit.core.sampler.Sampler``); ``docs/samplers.md`` compares them.
"""
