"""Async HTTP gateway: POST /compare/ over the image and text predictors."""
