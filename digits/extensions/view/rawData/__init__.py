"""Built-in view extension: the raw output arrays (the default view)."""

from digits.extensions.view.rawData.view import Visualization

__all__ = ["Visualization"]
