"""Built-in data extension: images and their KITTI label files (boxes of objects), for detection."""

from digits.extensions.data.objectDetection.data import DataIngestion

__all__ = ["DataIngestion"]
