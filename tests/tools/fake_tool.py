"""A stand-in tool for scheduler tests: speaks the protocol, sleeps, fails or prints junk on request.

Run as ``python -m fake_tool`` with ``tests/tools`` on PYTHONPATH.
"""

import argparse
import sys
import time

from digits.tools.protocol import emit, run_tool


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.01)
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--exit", type=int, default=0)
    args = parser.parse_args(argv)
    print("not a protocol line", flush=True)
    for step in range(1, args.steps + 1):
        time.sleep(args.sleep)
        emit("progress", done=step, total=args.steps)
    if args.fail:
        raise RuntimeError("the fake tool was asked to fail")
    emit("result", steps=args.steps)
    sys.stderr.write("human-readable line\n")
    return args.exit


if __name__ == "__main__":
    run_tool(main)
