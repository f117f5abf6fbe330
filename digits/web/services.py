"""The services one app owns (job store, scheduler, workers) and how a view reaches them."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from flask_socketio import SocketIO

from digits.accounts import Accounts
from digits.config import Config
from digits.events import Publisher
from digits.inference.worker import InferenceWorker
from digits.jobs import JobStore
from digits.scheduler import LocalScheduler, ResourcePools
from digits.tensorboard import TensorBoardManager

EXTENSION_KEY = "digits"


@dataclass
class Services:
    """What the views reach through :func:`current_services`."""

    config: Config
    store: JobStore
    pools: ResourcePools
    scheduler: LocalScheduler
    publisher: Publisher
    socketio: SocketIO
    inference: InferenceWorker
    tensorboard: TensorBoardManager
    accounts: Accounts
    # The one-time token of the setup link, while no account exists and none came from the environment.
    setup_token: str | None = None

    def shutdown(self) -> None:
        """Stop every child process the server started."""
        self.scheduler.shutdown()
        self.inference.shutdown()
        self.tensorboard.shutdown()


def current_services() -> Services:
    """The running app's services, for views (inside a request)."""
    return current_app.extensions[EXTENSION_KEY]


def services_of(app: Flask) -> Services:
    """The services of ``app`` (outside a request: tests, the command line)."""
    return app.extensions[EXTENSION_KEY]
