"""Built-in data extension: pairs of images (input, target) for auto-encoders, denoising, super-resolution."""

from digits.extensions.data.imageProcessing.data import DataIngestion

__all__ = ["DataIngestion"]
