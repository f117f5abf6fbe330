"""Visualize for PyTorch networks: the layers of a standard network with their NCHW output shapes and parameter
counts, and a network that does not run answered with the user's line, through the route the form calls."""

from __future__ import annotations

import pytest

from digits.models.frameworks import TORCH
from digits.visualize import NetworkBuildError, visualize_network

pytest.importorskip("torch")

ROUTE = "/models/visualize-network.json"
# A LeNet whose first linear layer expects the wrong number of inputs (as after changing the input size).
WRONG_INPUTS = """class UserModel(nn.Module):
    def __init__(self, input_shape, nclasses):
        super().__init__()
        self.conv = nn.Conv2d(input_shape[2], 8, 5)
        self.fc = nn.Linear(100, nclasses)

    def forward(self, x):
        x = F.relu(self.conv(x))
        return self.fc(x.flatten(1))
"""


def visualize(client, source: str, framework: str = "torch"):
    """The route's answer for ``source`` built for 28x28 grayscale images into 10 classes."""
    return client.post(ROUTE, data={"custom_network": source, "input_shape": "28,28,1", "framework": framework})


def test_lenet_layers_output_shapes_and_parameters():
    result = visualize_network(TORCH.network_source("lenet"), [28, 28, 1], 10, framework="torch")
    layers = [(layer["name"], layer["type"], layer["output_shape"], layer["params"]) for layer in result["layers"]]
    assert result["layout"] == "NCHW"
    assert layers == [
        ("input", "Input", [None, 1, 28, 28], 0),
        ("conv1", "Conv2d", [None, 20, 24, 24], 5 * 5 * 20 + 20),
        ("conv2", "Conv2d", [None, 50, 8, 8], 5 * 5 * 20 * 50 + 50),
        ("fc1", "Linear", [None, 500], 50 * 4 * 4 * 500 + 500),
        ("fc2", "Linear", [None, 10], 500 * 10 + 10),
        ("loss", "Loss", [], 0),
    ]
    # The same count as the TensorFlow LeNet's (tests/test_tensorboard.py).
    assert result["total_params"] == 431_080 and result["metrics"] == ["accuracy"]


def test_the_route_answers_a_broken_network_with_the_users_line(logged_in):
    answer = visualize(logged_in, WRONG_INPUTS)
    assert answer.status_code == 400
    error = answer.get_json()
    assert "mat1 and mat2 shapes cannot be multiplied" in error["message"] and "line 9" in error["message"]
    assert error["user_line"] == 9 and error["user_source_line"].strip() == "return self.fc(x.flatten(1))"
    # An output that does not fit the classes, on its own line too.
    fewer = WRONG_INPUTS.replace("nn.Linear(100, nclasses)", "nn.Linear(8 * 24 * 24, 3)")
    answer = visualize(logged_in, fewer)
    assert answer.status_code == 400 and "needs logits [batch, 10]" in answer.get_json()["message"]
    fits = fewer.replace(", 3)", ", nclasses)")
    answer = visualize(logged_in, fits)
    assert answer.status_code == 200 and answer.get_json()["total_params"] == 8 * 26 + 8 * 24 * 24 * 10 + 10


def test_the_route_refuses_a_framework_it_lacks(logged_in):
    answer = visualize(logged_in, WRONG_INPUTS, framework="caffe")
    assert answer.status_code == 400
    assert answer.get_json()["errors"]["framework"] == ["Choose a framework this server has: tensorflow, torch."]
    with pytest.raises(NetworkBuildError, match="must define class UserModel"):
        visualize_network("class Model(nn.Module):\n    pass\n", [28, 28, 1], 10, framework="torch")
