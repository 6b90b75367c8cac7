"""Core interfaces: embedding providers, backbones, denoisers, samplers, adapters, pipelines.

These modules import torch; import them only where a model is actually built.
"""
