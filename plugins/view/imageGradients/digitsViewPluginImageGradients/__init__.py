from .view import Visualization

__all__ = ["Visualization"]
