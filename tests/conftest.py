"""Fixtures: an app on a temporary jobs directory, a client logged in, folders of real images."""

from __future__ import annotations

from pathlib import Path

import pytest
from sample_images import write_digits_folder

from digits.app import create_app
from digits.config import Config


@pytest.fixture(scope="session")
def digits_folder(tmp_path_factory) -> Path:
    """30 images of each digit class as 28x28 grayscale PNGs."""
    return write_digits_folder(tmp_path_factory.mktemp("digits"), per_class=30)


@pytest.fixture(scope="module")
def shipped_plugins(tmp_path_factory):
    """The plugins of plugins/ pip-installed into the test venv for a module (and removed after it)."""
    from plugin_packages import SHIPPED, installed

    with installed(SHIPPED, tmp_path_factory.mktemp("shipped")):
        yield


@pytest.fixture
def app(tmp_path):
    app = create_app(Config.from_env(jobs_dir=tmp_path / "jobs", testing=True))
    yield app
    app.extensions["digits"].shutdown()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def logged_in(client):
    client.post("/login", data={"username": "fred"})
    return client
