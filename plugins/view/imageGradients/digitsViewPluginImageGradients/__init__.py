"""The image gradients view plugin; DIGITS finds ``Visualization`` through the entry point in setup.py."""

from .view import Visualization

__all__ = ["Visualization"]
