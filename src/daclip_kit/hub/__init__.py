"""Sharing on the Hugging Face Hub: ``daclip-kit push`` (:func:`push_folder`) and its model card.

Downloading ``hf://`` references is part of the one weights resolver
(:mod:`daclip_kit.weights.hub`). Nothing here imports torch or ``huggingface_hub`` at import time.
"""

from __future__ import annotations

from .card import model_card
from .folders import PushPlan, plan_push
from .push import HubPushError, PushResult, push_folder

__all__ = ["HubPushError", "PushPlan", "PushResult", "model_card", "plan_push", "push_folder"]
