"""Learning-rate policies: DIGITS' definitions over percent of training, and the form's preview route."""

from __future__ import annotations

import math

import pytest

from digits.lr_policy import LRPolicy, parse_percents


def test_policies_follow_digits_definitions():
    assert LRPolicy("fixed", 0.1).rate(70) == 0.1
    step = LRPolicy("step", 0.1, step_size=33, gamma=0.1)
    assert [round(step.rate(x), 6) for x in (0, 32.9, 33, 66, 99)] == [0.1, 0.1, 0.01, 0.001, 0.0001]
    multistep = LRPolicy("multistep", 1.0, gamma=0.5, multistep_values=[50, 85])
    assert [multistep.rate(x) for x in (49, 50, 84, 85, 100)] == [1.0, 0.5, 0.5, 0.25, 0.25]
    assert LRPolicy("exp", 1.0, gamma=0.95).rate(10) == pytest.approx(0.95**10)
    assert LRPolicy("inv", 1.0, gamma=0.1, power=0.5).rate(30) == pytest.approx(0.5)
    assert LRPolicy("poly", 1.0, power=2).rate(50) == pytest.approx(0.25)
    assert LRPolicy("poly", 1.0, power=2).rate(100) == 0
    assert LRPolicy("sigmoid", 1.0, step_size=50, gamma=0.1).rate(50) == pytest.approx(0.5)
    assert LRPolicy("sigmoid", 1.0, step_size=50, gamma=0.1).rate(0) == pytest.approx(1 / (1 + math.exp(-5)))


def test_curve_spans_the_epochs():
    curve = LRPolicy("step", 0.01, step_size=50, gamma=0.1).curve(epochs=30, points=5)
    assert curve == {"epochs": [0, 7.5, 15, 22.5, 30], "lr": pytest.approx([0.01, 0.01, 0.001, 0.001, 0.0001])}


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="'abc' is not a number"):
        parse_percents("50, abc")
    with pytest.raises(ValueError, match="unknown learning rate policy 'cosine'"):
        LRPolicy("cosine")


def test_preview_route(client):
    answer = client.get(
        "/models/visualize-lr?learning_rate=0.1&lr_policy=multistep&lr_multistep_values=50&train_epochs=10"
    )
    curve = answer.get_json()
    assert curve["epochs"][-1] == 10 and curve["lr"][0] == 0.1 and curve["lr"][-1] == pytest.approx(0.05)
    bad = client.get("/models/visualize-lr?lr_policy=multistep&lr_multistep_values=x")
    assert bad.status_code == 400 and "'x' is not a number" in bad.get_json()["errors"]
