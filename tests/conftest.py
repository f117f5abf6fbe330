"""Fixtures: apps on temporary jobs directories, a client logged in, folders of real images."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sample_images import write_digits_folder

from digits.app import create_app
from digits.config import Config
from digits.web.services import services_of


class AppMaker:
    """Builds apps the way a server start does, each on a jobs directory; :meth:`shutdown` stops them all."""

    def __init__(self, jobs_dir: Path):
        self.jobs_dir = jobs_dir
        self.apps: list[Flask] = []

    def __call__(self, jobs_dir: Path | None = None, **settings) -> Flask:
        """An app on ``jobs_dir`` (the maker's own by default); ``settings`` are :class:`Config` fields."""
        settings.setdefault("testing", True)
        # DIGITS' single-user mode (a name logs in) unless a test is about accounts.
        settings.setdefault("auth", "none")
        # Tests make their folders under pytest's temporary directories: data roots there and here.
        settings.setdefault("data_roots", [Path(tempfile.gettempdir()), Path.cwd()])
        app = create_app(Config.from_env(jobs_dir=jobs_dir or self.jobs_dir, **settings))
        self.apps.append(app)
        return app

    def shutdown(self) -> None:
        """Stop what every app made started (shutting one down twice is harmless)."""
        for app in self.apps:
            services_of(app).shutdown()


@pytest.fixture
def make_app(tmp_path) -> Iterator[AppMaker]:
    """Makes apps for one test, on ``tmp_path / "jobs"`` unless told another jobs directory."""
    maker = AppMaker(tmp_path / "jobs")
    yield maker
    maker.shutdown()


@pytest.fixture(scope="module")
def make_module_app(tmp_path_factory) -> Iterator[AppMaker]:
    """Makes apps shared by the tests of a module (a trained model kept for all of them)."""
    maker = AppMaker(tmp_path_factory.mktemp("module") / "jobs")
    yield maker
    maker.shutdown()


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
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def logged_in(client):
    client.post("/login", data={"username": "fred"})
    return client
