"""DIGITS: a self-hosted web application to build image datasets and train TensorFlow models."""

__version__ = "7.0.0.dev0"
