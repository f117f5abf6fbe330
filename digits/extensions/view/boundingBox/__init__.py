"""Built-in view extension: detected objects drawn as boxes on the input image."""

from digits.extensions.view.boundingBox.view import Visualization

__all__ = ["Visualization"]
