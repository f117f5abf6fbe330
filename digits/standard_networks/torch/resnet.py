# A small ResNet (He et al., 2015): ResNet-18's layout of basic residual blocks with batch normalization,
# widths 64-128-256-512, global average pooling; the PyTorch twin of the TensorFlow resnet.py. Works on small
# images (28x28) and large ones (224x224): the stem only downsamples images wider than 64 pixels.
# x is an NCHW float batch, mean subtracted.
import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(inputs, outputs, size, stride=1):
    """A convolution without bias (the normalization has one) followed by batch normalization."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, size, stride, padding=size // 2, bias=False),
        nn.BatchNorm2d(outputs, momentum=0.1, eps=1e-5),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions plus the input (projected by a 1x1 convolution when the shape changes)."""

    def __init__(self, inputs, width, stride):
        super().__init__()
        self.conv1 = conv_bn(inputs, width, 3, stride)
        self.conv2 = conv_bn(width, width, 3)
        self.shortcut = conv_bn(inputs, width, 1, stride) if stride != 1 or inputs != width else nn.Identity()

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


class UserModel(nn.Module):
    def __init__(self, input_shape, nclasses):
        super().__init__()
        height, width, channels = input_shape
        if width > 64:
            self.stem = nn.Sequential(conv_bn(channels, 64, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        else:
            self.stem = nn.Sequential(conv_bn(channels, 64, 3), nn.ReLU(inplace=True))
        blocks, inputs = [], 64
        for stage, planes in enumerate([64, 128, 256, 512]):
            stride = 1 if stage == 0 else 2
            blocks += [ResidualBlock(inputs, planes, stride), ResidualBlock(planes, planes, 1)]
            inputs = planes
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, nclasses)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x):
        x = x * (1.0 / 64)  # mean-subtracted pixels of 0..255 to about unit scale
        x = self.blocks(self.stem(x))
        return self.fc(x.mean(dim=(2, 3)))

    def regularization(self):
        # TensorFlow's l2_regularizer(0.0001) on the convolutions' weights.
        return 0.0001 * 0.5 * sum((m.weight ** 2).sum() for m in self.modules() if isinstance(m, nn.Conv2d))
