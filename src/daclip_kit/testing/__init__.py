"""Contract checks for component authors.

Run them on your own plugin's components to check they honour daclip-kit's interfaces::

    from daclip_kit.testing import check_backbone_contract

    def test_my_unet():
        check_backbone_contract("my-unet")   # builds it from its spec's tiny_config

Each ``check_*`` function builds the component from its registered spec (``tiny_config`` merged
with ``config``) unless given an instance, exercises it, and raises ``AssertionError`` with a
message saying which rule was broken. The pytest plugin (auto-loaded) adds fixtures
``dk_plugin_host`` and ``tiny_image``.
"""

from __future__ import annotations

from .contracts import (
    check_adapter_contract,
    check_backbone_contract,
    check_degradation_contract,
    check_embedder_contract,
    check_sampler_contract,
    check_state_dict_round_trip,
)

__all__ = [
    "check_adapter_contract",
    "check_backbone_contract",
    "check_degradation_contract",
    "check_embedder_contract",
    "check_sampler_contract",
    "check_state_dict_round_trip",
]
