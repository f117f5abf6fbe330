"""``create_app(config)`` builds the web application and everything it owns: store, scheduler, events."""

from __future__ import annotations

import atexit
import logging
import os
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask_socketio import SocketIO
from werkzeug.middleware.proxy_fix import ProxyFix

from digits import __version__, auth
from digits.accounts import open_accounts
from digits.config import Config, check_single_user_host
from digits.datasets.generic_routes import blueprint as generic_datasets_blueprint
from digits.datasets.routes import blueprint as datasets_blueprint
from digits.events import Publisher
from digits.extensions import web as extensions_web
from digits.hardware import discover_gpus
from digits.inference.routes import blueprint as inference_blueprint
from digits.inference.worker import InferenceWorker
from digits.jobs import JobStore
from digits.models.routes import blueprint as models_blueprint
from digits.pretrained.routes import blueprint as pretrained_blueprint
from digits.scheduler import LocalScheduler, ResourcePools
from digits.tensorboard import TensorBoardManager
from digits.web import account, api, compare, errors, home, jobs, limits, security, thumbnails
from digits.web import tensorboard as tensorboard_web
from digits.web.digits_urls import blueprint as digits_urls_blueprint
from digits.web.services import EXTENSION_KEY, Services

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent


def _asset_dir(name: str) -> Path:
    # Installed packages carry digits/templates and digits/static; a source checkout has them at the top.
    installed = PACKAGE_DIR / name
    return installed if installed.is_dir() else PACKAGE_DIR.parent / name


class PrefixMiddleware:
    """Serves the app under ``DIGITS_URL_PREFIX``: moves the prefix from PATH_INFO to SCRIPT_NAME."""

    def __init__(self, app, prefix: str):
        self.app = app
        self.prefix = prefix

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
            return self.app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [f"This server serves DIGITS under {self.prefix}/\n".encode()]


def create_app(config: Config | None = None) -> Flask:
    """Build the app: load every job, start the scheduler, register the blueprints."""
    config = config or Config.from_env()
    app = Flask(
        __name__,
        template_folder=str(_asset_dir("templates")),
        static_folder=str(_asset_dir("static")),
    )
    app.config.update(
        SECRET_KEY=config.load_secret_key(),
        TESTING=config.testing,
        # CSRF is checked once, in auth.check_csrf, which also lets scripts in (see there).
        WTF_CSRF_ENABLED=False,
        WTF_CSRF_TIME_LIMIT=None,
        DIGITS_VERSION=__version__,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Behind a proxy the browser is assumed to speak HTTPS to it; never send the session in clear then.
        SESSION_COOKIE_SECURE=config.trusted_proxies > 0,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=config.session_hours),
    )
    allowed_hosts = config.host_allowlist()
    app.config[security.ALLOWED_HOSTS_KEY] = allowed_hosts

    store = JobStore(config.jobs_dir)
    store.load_all(still_running=_cluster_task_check(config))
    # Same origin only: a page elsewhere must not read the job updates (engine.io asks this per connection).
    socketio = SocketIO(app, async_mode="threading", path="socket.io",
                        cors_allowed_origins=lambda origin, environ: security.is_allowed_origin(
                            origin, environ, allowed_hosts))  # fmt: skip
    publisher = Publisher(socketio, job_exists=lambda job_id: store.get(job_id) is not None)
    scheduler = _make_scheduler(config, store, publisher.job_changed)
    pools = scheduler.pools
    # Routes such as /datasets/images/classification and its .json twin share an endpoint and its
    # defaults; both are canonical, so Werkzeug must not redirect one to the other.
    app.url_map.redirect_defaults = False
    inference = InferenceWorker(config.jobs_dir / "inference-worker.log", config.inference_models,
                                config.inference_memory_mb, wait=config.inference_wait)  # fmt: skip
    tensorboard = TensorBoardManager(config.tensorboard_max, config.tensorboard_idle, url_prefix=config.url_prefix,
                                     log_dir=config.jobs_dir / "tensorboard")  # fmt: skip
    services = Services(config, store, pools, scheduler, publisher, socketio, inference, tensorboard,
                        accounts=open_accounts(config.jobs_dir))  # fmt: skip
    services.setup_token = bootstrap_accounts(config, services.accounts)
    app.extensions[EXTENSION_KEY] = services

    limits.init_app(app, config)  # first: the CSRF check reads bodies, within the route's limit
    auth.init_app(app)
    errors.init_app(app)
    app.register_blueprint(home.blueprint)
    app.register_blueprint(account.blueprint)
    app.register_blueprint(jobs.blueprint)
    app.register_blueprint(datasets_blueprint)
    extensions_web.init_app(app)
    app.register_blueprint(generic_datasets_blueprint)
    app.register_blueprint(models_blueprint)
    app.register_blueprint(inference_blueprint)
    app.register_blueprint(thumbnails.blueprint)
    tensorboard_web.init_app(app)
    app.register_blueprint(compare.blueprint)
    app.register_blueprint(pretrained_blueprint)
    app.register_blueprint(api.blueprint)  # /api/openapi.json
    app.register_blueprint(digits_urls_blueprint)  # DIGITS 6 URLs that redirect to ours

    if config.url_prefix:
        app.wsgi_app = PrefixMiddleware(app.wsgi_app, config.url_prefix)
    # Outermost, in this order: the proxy's headers applied, then the Host checked, then every answer marked.
    app.wsgi_app = security.SecurityHeaders(security.HostAllowlist(app.wsgi_app, allowed_hosts))
    if config.trusted_proxies:
        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n)

    scheduler.start()
    atexit.register(services.shutdown)
    return app


def bootstrap_accounts(config: Config, accounts) -> str | None:
    """Make sure someone can log in: the ``admin`` account from ``DIGITS_ADMIN_PASSWORD`` on a first start,
    else a one-time setup token for the first admin (the console shows its link). Returns that token."""
    check_single_user_host(config)
    if config.auth == "none":
        return None
    if accounts.count():
        return None
    password = os.environ.get("DIGITS_ADMIN_PASSWORD")
    if password:
        accounts.add("admin", password, is_admin=True)
        log.info("created the account admin from DIGITS_ADMIN_PASSWORD")
        return None
    return auth.new_setup_token()


def _cluster_task_check(config: Config):
    """What tells the store which running tasks live on without this server: those on the cluster, if any."""
    if not config.cluster:
        return None
    from digits.scheduler.ray_backend import is_cluster_task

    return is_cluster_task


def _make_scheduler(config: Config, store: JobStore, on_change) -> LocalScheduler:
    """The local scheduler, or with ``config.cluster`` the Ray one (Ray is imported only then)."""
    if config.cluster:
        from digits.scheduler.ray_backend import RayScheduler

        return RayScheduler(store, config.cluster, on_change=on_change)
    pools = ResourcePools(discover_gpus() if config.gpus is None else _select_gpus(config.gpus), config.cpu_slots)
    return LocalScheduler(store, pools, on_change=on_change)


def _select_gpus(indices: list[int]):
    return [g for g in discover_gpus() if g.index in indices]
