"""Restormer (Zamir et al., CVPR 2022), weight-compatible with the official releases.

:mod:`.config` is torch-free; :mod:`.arch` holds the network and the transformer blocks PromptIR reuses.
"""
