"""Example daclip-kit plugin: a small conditioned CNN restorer and a FiLM adapter."""
