"""DA-CLIP: the controlled CLIP network (model.py), its loss (loss.py), official and native
checkpoint loading (convert.py), bundled configs (model_configs/) and the ``daclip`` provider."""
