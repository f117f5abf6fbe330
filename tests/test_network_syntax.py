"""Visualize answers a syntax error in the user's network at once, with its line, before building anything."""

from __future__ import annotations

import time

NETWORK = "class UserModel(Tower):\n    @model_property\n    def inference(self)\n        return self.x\n"


def test_a_syntax_error_is_answered_at_once_with_its_line(logged_in):
    started = time.monotonic()
    fields = {"custom_network": NETWORK, "input_shape": "28,28,1"}
    answer = logged_in.post("/models/visualize-network.json", data=fields)
    seconds = time.monotonic() - started
    assert answer.status_code == 400
    error = answer.get_json()
    assert error["user_line"] == 3 and error["user_source_line"].strip() == "def inference(self)"
    assert error["message"].startswith("SyntaxError") and "line 3" in error["message"]
    assert seconds < 1, f"{seconds:.1f} s: the network was built in a child process"
