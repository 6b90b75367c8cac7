"""IR-SDE conditional U-Net of DA-CLIP (universal and Wild-IR networks), weight-compatible with
the official ``universal-ir.pth`` / ``wild-ir.pth``.

Import :mod:`.arch` for the network; :mod:`.config` is torch-free.
"""
