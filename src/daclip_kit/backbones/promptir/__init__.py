"""PromptIR (Potlapalli et al., NeurIPS 2023): Restormer with prompt-generation blocks in the
decoder, weight-compatible with the official all-in-one ``model.ckpt``.

:mod:`.config` is torch-free; :mod:`.arch` holds the network.
"""
