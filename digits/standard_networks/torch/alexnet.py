# AlexNet (Krizhevsky et al., 2012) as DIGITS trains it: for 224x224 (or larger, cropped) color images; the
# PyTorch twin of the TensorFlow alexnet.py. x is an NCHW float batch, mean subtracted.
import torch
import torch.nn.functional as F
from torch import nn


class UserModel(nn.Module):
    def __init__(self, input_shape, nclasses):
        super().__init__()
        height, width, channels = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 96, 11, stride=4), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        # The size of the features depends on the images: measure it once on an empty batch.
        with torch.no_grad():
            features = self.features(torch.zeros(1, channels, height, width)).numel()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(features, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, nclasses),
        )
        for layer in self.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x):
        return self.classifier(self.features(x))

    def regularization(self):
        # TensorFlow's l2_regularizer(1e-6) on every weight (not biases).
        return 1e-6 * 0.5 * sum((p ** 2).sum() for name, p in self.named_parameters() if name.endswith("weight"))
