# A small fully convolutional network for segmentation: every pixel gets a class; the PyTorch twin of the
# TensorFlow fcn.py. x is an NCHW float batch; y the label array [N, 1, H, W] of class indices (a generic
# dataset's masks). Two poolings shrink the image by 4; a transposed convolution brings the scores back to
# full size, so image sides should be multiples of 4. The loss is the cross-entropy over every pixel.
import torch
import torch.nn.functional as F
from torch import nn


class UserModel(nn.Module):
    def __init__(self, input_shape, nclasses):
        super().__init__()
        channels = input_shape[2]
        self.conv1 = nn.Conv2d(channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        # One score map per class, at a quarter of the size, then back to the image's size.
        self.score = nn.Conv2d(128, nclasses, 1)
        self.upscore = nn.ConvTranspose2d(nclasses, nclasses, 8, stride=4, padding=2)
        for layer in (self.conv1, self.conv2, self.conv3, self.score, self.upscore):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        x = x / 255.0
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x))
        return self.upscore(self.score(x))

    def loss(self, output, y):
        return F.cross_entropy(output, y[:, 0].long())

    def regularization(self):
        layers = (self.conv1, self.conv2, self.conv3, self.score, self.upscore)
        return 0.0005 * 0.5 * sum((layer.weight ** 2).sum() for layer in layers)

    def metrics(self, output, y):
        return {"accuracy": (output.argmax(1) == y[:, 0].long()).float().mean()}
