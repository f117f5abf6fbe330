# LeNet-5 (LeCun et al., 1998) for 28x28 digits: the PyTorch twin of the TensorFlow lenet.py, layer for layer
# (conv 20 5x5, pool, conv 50 5x5, pool, fc 500, dropout 0.5, fc per class; Glorot-initialized weights and an
# L2 penalty of 0.0005 on them). x is an NCHW float batch, mean subtracted.
import torch
import torch.nn.functional as F
from torch import nn


class UserModel(nn.Module):
    def __init__(self, input_shape, nclasses):
        super().__init__()
        height, width, channels = input_shape
        self.conv1 = nn.Conv2d(channels, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        # Each 5x5 valid convolution takes 4 pixels off a side, each pooling halves it.
        side_h, side_w = ((height - 4) // 2 - 4) // 2, ((width - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(50 * side_h * side_w, 500)
        self.fc2 = nn.Linear(500, nclasses)
        for layer in (self.conv1, self.conv2, self.fc1, self.fc2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        x = x * 0.0125  # scale (divide by MNIST's standard deviation)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.dropout(x, 0.5, training=self.training)
        return self.fc2(x)

    def regularization(self):
        # As TensorFlow's l2_regularizer: half the sum of squared weights (not biases), times the scale.
        penalty = sum((layer.weight ** 2).sum() for layer in (self.conv1, self.conv2, self.fc1, self.fc2))
        return 0.0005 * 0.5 * penalty
