"""The mean-reverting SDE of IR-SDE (Luo et al., 2023) used by DA-CLIP, as a stateless sampler."""
