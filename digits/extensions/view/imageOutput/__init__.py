"""Built-in view extension: the network's output shown as an image (auto-encoders, image-to-image)."""

from digits.extensions.view.imageOutput.view import Visualization

__all__ = ["Visualization"]
