"""Restoration networks of other architectures, loaded through spandrel (the ``[spandrel]`` extra)."""
