"""Schemathesis fuzzes a live, password-protected server from its own /api/openapi.json.

Bounded: a few examples per operation with a fixed seed and a total time cap. Whatever it sends, the server
answers no 5xx, never hangs, says what was wrong in ``{"errors": ...}`` for every 4xx, and its jobs
directory loads again afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from server import LiveServer

from digits.jobs import JobStore

EXAMPLES_PER_OPERATION = 25
TIME_CAP_SECONDS = 120
REQUEST_TIMEOUT_SECONDS = 15
ADMIN_PASSWORD = "fuzz-admin-password"
USER_PASSWORD = "fuzz-user-password"
# Each Visualize example would build a TensorFlow graph in a child process (seconds apiece): not a fuzzing
# budget. Logging out ends the fuzzer's own session on the server (every later request would be a 401); what it
# does is tested in test_accounts.
SKIPPED = {("POST", "/models/visualize-network.json"), ("POST", "/logout")}


@pytest.fixture(scope="module")
def server(tmp_path_factory, digits_folder):
    """A server in password mode with one finished dataset made by the admin; the fuzzer is a plain user."""
    jobs_dir = tmp_path_factory.mktemp("fuzz") / "jobs"
    jobs_dir.mkdir()
    for name, password, role in (("admin", ADMIN_PASSWORD, ["--admin"]), ("fuzzer", USER_PASSWORD, [])):
        subprocess.run([sys.executable, "-m", "digits", "users", "--jobs-dir", str(jobs_dir), "add", name, *role,
                        "--password-stdin"], input=password, text=True, check=True)  # fmt: skip
    live = LiveServer(jobs_dir, env={"DIGITS_AUTH": "password"}).start()
    try:
        admin = requests.Session()
        assert admin.post(live.url + "/login", data={"username": "admin", "password": ADMIN_PASSWORD}).ok
        fields = dict(method="folder", folder_train=str(digits_folder), encoding="png", resize_channels="1",
                      resize_width="28", resize_height="28", dataset_name="fuzzed")  # fmt: skip
        dataset = admin.post(live.url + "/datasets/images/classification.json", data=fields).json()["id"]
        deadline = time.monotonic() + 120
        while admin.get(f"{live.url}/datasets/{dataset}/status").json()["status"] not in ("Done", "Error"):
            assert time.monotonic() < deadline, "the dataset did not build"
            time.sleep(0.2)
        live.dataset = dataset
        yield live
    finally:
        live.stop()


def test_fuzzed_api_answers_json_errors_and_keeps_jobs(server, capsys):
    user = requests.Session()
    assert user.post(server.url + "/login", data={"username": "fuzzer", "password": USER_PASSWORD}).ok
    # Sent with every request, so a fuzzed login does not change who the fuzzer is.
    cookies = user.cookies.get_dict()
    document = user.get(server.url + "/api/openapi.json").json()
    # The job ids the fuzzer tries first: a real dataset (not the fuzzer's: changes must answer 403).
    for item in document["paths"].values():
        for param in item.get("parameters", []):
            if param["name"] == "job_id":
                param["schema"] = {**param["schema"], "example": server.dataset}
    schema = schemathesis.openapi.from_dict(document)

    started = time.monotonic()
    statuses, failures, fuzzed, skipped = Counter(), [], 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        if time.monotonic() - started > TIME_CAP_SECONDS:
            skipped.append(f"{operation.method.upper()} {operation.path}")
            continue

        @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy())
        def fuzz(case):
            answer = case.call(base_url=server.url, cookies=cookies, timeout=REQUEST_TIMEOUT_SECONDS)
            statuses[answer.status_code] += 1
            problem = _problem(answer)
            if problem:
                failures.append(f"{case.method} {answer.request.url}: {problem}")

        fuzz()
        fuzzed += 1
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nfuzz: {statuses.total()} requests to {fuzzed} operations in {elapsed:.0f} s, answers "
              f"{dict(sorted(statuses.items()))}"
              + (f"; not reached in time: {', '.join(skipped)}" if skipped else ""))  # fmt: skip
    assert not failures, "\n".join(failures[:20])
    assert not skipped, f"the time cap left {len(skipped)} operations unfuzzed"

    # Still serving, still loading its jobs: the admin's dataset is there and Done.
    assert user.get(server.url + "/index.json", timeout=REQUEST_TIMEOUT_SECONDS).ok
    store = JobStore(server.jobs_dir)
    assert store.load_all() == []
    assert store.get(server.dataset).status == "Done"


def _problem(answer: requests.Response) -> str | None:
    """What is wrong with an answer to a fuzzed request, or None."""
    if answer.status_code >= 500 and answer.status_code != 503:
        return f"{answer.status_code}: {answer.text[:300]}"
    if 400 <= answer.status_code < 600:
        try:
            errors = answer.json().get("errors")
        except (ValueError, AttributeError):
            return f"{answer.status_code} is not JSON: {answer.text[:200]!r}"
        if not errors:
            return f"{answer.status_code} without a message: {answer.text[:200]}"
    return None
