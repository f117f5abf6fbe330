"""Built-in data extension: images and their label images (one class index per pixel), with a palette."""

from digits.extensions.data.imageSegmentation.data import DataIngestion

__all__ = ["DataIngestion"]
