"""A tool's log as its job page shows it: TensorFlow's start-up notices folded, everything else kept in order."""

from __future__ import annotations

import sys

from digits.processes import run_to_end

# What TensorFlow 2.21 prints to stderr as it starts on a machine without a GPU, then a line of the tool's own.
STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796125333.249814   21316 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1796125333.250087   21316 cudart_stub.cc:31] Could not find cuda drivers on your machine.",
    "E0000 00:00:1796125339.813145   21316 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
]
RESULT = '{"event": "result"}'


def test_startup_notices_are_folded_and_the_tool_lines_kept(tmp_path):
    lines = [*STARTUP, "epoch 1 val: loss 0.3000", *STARTUP[:2], "trained at 900 images/s"]
    text = "\n".join(lines) + "\n"
    script = f"import sys; sys.stderr.write({text!r}); print({RESULT!r})"
    log = tmp_path / "train.log"
    returncode, events = run_to_end([sys.executable, "-c", script], log=log, timeout=30)
    assert (returncode, events) == (0, [{"event": "result"}])
    assert log.read_text().splitlines() == [
        "TensorFlow started (its start-up notices are left out of this log)",
        "TensorFlow found no usable GPU (no CUDA driver): it runs on the CPU",
        "epoch 1 val: loss 0.3000",
        "trained at 900 images/s",
    ]
