"""DA-CLIP conditioning attached to a backbone by configuration (torch-free config part).

A backbone config that inherits :class:`AdapterSlotsConfig` gets two optional named adapters
(``daclip-kit ls adapters``): one fed by the degradation embedding, one by the content embedding.
Both default to ``None``, which builds the plain network with exactly its official keys; setting
a name adds that adapter's keys under ``adapters.*`` and nothing else. Where each adapter sits is
the backbone's choice and is stated in its docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class AdapterSlotsConfig:
    """Optional DA-CLIP adapters of a backbone.

    Attributes:
        context_dim: size ``D`` of the DA-CLIP embeddings (512 for ViT-B/32, 768 for ViT-L/14).
        degradation_adapter: registered adapter fed by the degradation embedding (e.g. ``"prompt"``),
            or ``None``.
        degradation_adapter_config: extra options of that adapter (e.g. ``{"num_prompts": 5}``).
        content_adapter: registered adapter fed by the content embedding (e.g. ``"cross-attention"``),
            or ``None``.
        content_adapter_config: extra options of that adapter (e.g. ``{"heads": 8}``).
    """

    context_dim: int = 512
    degradation_adapter: str | None = None
    degradation_adapter_config: dict[str, Any] = field(default_factory=dict)
    content_adapter: str | None = None
    content_adapter_config: dict[str, Any] = field(default_factory=dict)

    def check_adapters(self) -> None:
        """Validate the adapter fields (called by the backbone config's ``__post_init__``)."""
        for role in ("degradation", "content"):
            options = getattr(self, f"{role}_adapter_config")
            if not isinstance(options, Mapping):
                raise ConfigError(f"{role}_adapter_config must be a mapping of adapter options, got {options!r}.")
            object.__setattr__(self, f"{role}_adapter_config", dict(options))
            name = getattr(self, f"{role}_adapter")
            if name is not None and (not isinstance(name, str) or not name):
                raise ConfigError(f"{role}_adapter must be a registered adapter name (daclip-kit ls adapters) "
                                  f"or null, got {name!r}.")
        if self.uses_adapters and self.context_dim < 1:
            raise ConfigError(f"context_dim={self.context_dim} must be positive (512 for DA-CLIP ViT-B/32).")

    @property
    def uses_adapters(self) -> bool:
        return self.degradation_adapter is not None or self.content_adapter is not None
