"""AirNet (Li et al., CVPR 2022): a degradation-guided restorer (DGRN) driven by a contrastive
degradation encoder (CBDE), key-compatible with the official ``All.pth``/``Denoise.pth``/... files.

:mod:`.config` is torch-free; :mod:`.arch` holds the network.
"""
