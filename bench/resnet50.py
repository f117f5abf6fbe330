# ResNet-50 (He et al., 2015) for bench/train_torch.py, a network source of the PyTorch contract (docs/pytorch.md):
# a 7x7 stem with max pooling, four stages of 3, 4, 6 and 3 bottleneck blocks of widths 64-128-256-512 (each a
# 1x1 convolution down to the width, a 3x3 at it, a 1x1 up to 4x the width, plus the input), global average
# pooling. A stage halves the size on its first block's 3x3 convolution (the placement that published images/s
# figures use). The standard resnet.py is ResNet-18's basic blocks; this one is here because GPU benchmarks
# are quoted for ResNet-50. x is an NCHW float batch, mean subtracted.
import torch.nn.functional as F
from torch import nn

EXPANSION = 4  # a bottleneck block's output is this many times its width
STAGES = [(64, 3), (128, 4), (256, 6), (512, 3)]  # (width, blocks)


def conv_bn(inputs, outputs, size, stride=1):
    """A convolution without bias (the normalization has one) followed by batch normalization."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, size, stride, padding=size // 2, bias=False), nn.BatchNorm2d(outputs)
    )


class Bottleneck(nn.Module):
    """1x1 down to ``width``, 3x3 (with the stride), 1x1 up to ``width * EXPANSION``, plus the input (projected by
    a 1x1 convolution when the shape changes)."""

    def __init__(self, inputs, width, stride):
        super().__init__()
        outputs = width * EXPANSION
        self.reduce = conv_bn(inputs, width, 1)
        self.conv = conv_bn(width, width, 3, stride)
        self.expand = conv_bn(width, outputs, 1)
        changes = stride != 1 or inputs != outputs
        self.shortcut = conv_bn(inputs, outputs, 1, stride) if changes else nn.Identity()

    def forward(self, x):
        y = F.relu(self.conv(F.relu(self.reduce(x))))
        return F.relu(self.expand(y) + self.shortcut(x))


class UserModel(nn.Module):
    def __init__(self, input_shape, nclasses):
        super().__init__()
        channels = input_shape[2]
        self.stem = nn.Sequential(conv_bn(channels, 64, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        blocks, inputs = [], 64
        for stage, (width, count) in enumerate(STAGES):
            for block in range(count):
                stride = 2 if stage > 0 and block == 0 else 1
                blocks.append(Bottleneck(inputs, width, stride))
                inputs = width * EXPANSION
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(inputs, nclasses)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = x * (1.0 / 64)  # mean-subtracted pixels of 0..255 to about unit scale, well inside fp16's range
        x = self.blocks(self.stem(x))
        return self.fc(x.mean(dim=(2, 3)))
