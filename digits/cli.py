"""``python -m digits`` / ``digits-server``: start the web server."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from gunicorn.app.base import BaseApplication

from digits import __version__
from digits.config import Config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digits-server", description="Run the DIGITS web server.")
    parser.add_argument("-p", "--port", type=int, default=None, help="port to listen on (default 5000)")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument(
        "--jobs-dir", default=None, help="where jobs are kept (default $DIGITS_JOBS_DIR or ./digits-jobs)"
    )
    parser.add_argument("--url-prefix", default=None, help="serve under this path (default $DIGITS_URL_PREFIX)")
    parser.add_argument("--debug", action="store_true", help="log debug messages")
    parser.add_argument("--version", action="version", version=f"DIGITS {__version__}")
    return parser


def configure_logging(config: Config) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.logfile:
        config.logfile.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(config.logfile))
    logging.basicConfig(
        level=config.log_level_number,
        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s",
        handlers=handlers,
    )


class DigitsServer(BaseApplication):
    """Gunicorn, embedded: one worker process (it owns the scheduler and the jobs) with many threads.

    Threads, not more processes, serve many browsers at once: Socket.IO rooms and the job store live
    in that one process. Flask-SocketIO supports this set-up (threading mode with simple-websocket).
    """

    def __init__(self, config: Config):
        self.digits_config = config
        super().__init__()

    def load_config(self) -> None:
        config = self.digits_config
        self.cfg.set("bind", [f"{config.host}:{config.port}"])
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", 64)
        self.cfg.set("graceful_timeout", 10)
        self.cfg.set("loglevel", config.log_level)
        self.cfg.set("proc_name", "digits-server")
        # No admin socket in $HOME: several servers (tests, users) may run side by side.
        self.cfg.set("control_socket_disable", True)

    def load(self):
        from digits.app import create_app

        app = create_app(self.digits_config)
        logging.getLogger("digits").info(
            "DIGITS %s on http://%s:%d%s/ with jobs in %s",
            __version__,
            self.digits_config.host,
            self.digits_config.port,
            self.digits_config.url_prefix,
            self.digits_config.jobs_dir,
        )
        return app


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config = Config.from_env(port=args.port, host=args.host, jobs_dir=args.jobs_dir, url_prefix=args.url_prefix)
    if args.debug:
        config.log_level = "debug"
    configure_logging(config)
    DigitsServer(config).run()


if __name__ == "__main__":
    main()
