"""The TensorFlow training program: ``python -m digits.tools.tensorflow.main`` (see :mod:`.main`)."""
