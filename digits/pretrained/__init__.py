"""Pretrained models: a network, its weights, labels and preprocessing, usable and trainable without a dataset."""
