"""The PyTorch training program: ``python -m digits.tools.torch.main`` (see :mod:`.main`, and :mod:`.network` for
the ``UserModel(torch.nn.Module)`` contract). Modules here import PyTorch by absolute name, never TensorFlow."""
