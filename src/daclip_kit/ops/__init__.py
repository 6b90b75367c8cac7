"""Pure tensor operations shared by pipelines and networks (padding, tiling)."""
