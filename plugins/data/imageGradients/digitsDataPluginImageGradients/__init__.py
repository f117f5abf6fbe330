"""The image gradients data plugin; DIGITS finds ``DataIngestion`` through the entry point in setup.py."""

from .data import DataIngestion

__all__ = ["DataIngestion"]
