from .data import DataIngestion

__all__ = ["DataIngestion"]
