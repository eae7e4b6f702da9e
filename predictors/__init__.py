"""CLIP image and text predictors: KServe custom models on open_clip."""
