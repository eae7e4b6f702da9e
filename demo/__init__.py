"""The demo CLIP: a small model trained here on drawn coloured shapes."""
