"""Built-in view extension: a segmentation output as a coloured overlay on the input image."""

from digits.extensions.view.imageSegmentation.view import Visualization

__all__ = ["Visualization"]
