"""NAFNet (Chen et al., ECCV 2022), weight-compatible with the official ``NAFNet-*.pth`` releases,
with TLC as an inference option, plus the DA-CLIP-conditioned variant of the DA-CLIP paper.

:mod:`.config` is torch-free; import :mod:`.arch` / :mod:`.daclip` for the networks.
"""
