"""The official ``network_G.setting`` dicts and SDE options (plain data, no torch import).

Shared by the network converter, the backbone and pipeline registrations and the named weights.
"""

from __future__ import annotations

from typing import Any

#: ``network_G.setting`` of ``config/daclip-sde/options/test.yml`` (universal DA-CLIP model).
UNIVERSAL_SETTING: dict[str, Any] = {
    "in_nc": 3, "out_nc": 3, "nf": 64, "ch_mult": [1, 2, 4, 8], "context_dim": 512,
    "use_degra_context": True, "use_image_context": True,
}

#: ``network_G.setting`` of ``config/wild-ir/options/test.yml`` (Wild-IR).
WILD_SETTING: dict[str, Any] = {
    "in_nc": 3, "out_nc": 3, "nf": 64, "ch_mult": [1, 2, 4, 8], "context_dim": 768,
    "use_degra_context": False, "use_image_context": True, "scale": 0.5,
}

#: The universal network without conditioning (plain IR-SDE with this U-Net).
PLAIN_SETTING: dict[str, Any] = {
    **UNIVERSAL_SETTING, "context_dim": 0, "use_degra_context": False, "use_image_context": False,
}

#: ``sde`` section of both option files (max_sigma in 0-255 units).
OFFICIAL_SDE: dict[str, Any] = {"max_sigma": 50.0, "T": 100, "schedule": "cosine", "eps": 0.005}
