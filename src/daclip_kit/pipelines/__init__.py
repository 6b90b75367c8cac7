"""Named restoration models and building them from weights (``daclip-kit restore``)."""
