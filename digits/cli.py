"""``python -m digits`` / ``digits-server``: start the web server."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

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


def configure_logging(config: Config, debug: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.logfile:
        config.logfile.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(config.logfile))
    logging.basicConfig(
        level=logging.DEBUG if debug else config.log_level_number,
        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s",
        handlers=handlers,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config = Config.from_env(port=args.port, host=args.host, jobs_dir=args.jobs_dir, url_prefix=args.url_prefix)
    configure_logging(config, args.debug)

    from digits.app import create_app

    app = create_app(config)
    socketio = app.extensions["digits"].socketio
    # SIGTERM (systemd, docker stop) must stop the children as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    logging.getLogger("digits").info(
        "DIGITS %s on http://%s:%d%s/ with jobs in %s",
        __version__,
        config.host,
        config.port,
        config.url_prefix,
        config.jobs_dir,
    )
    try:
        socketio.run(app, host=config.host, port=config.port, allow_unsafe_werkzeug=True, use_reloader=False)
    finally:
        app.extensions["digits"].scheduler.shutdown()


if __name__ == "__main__":
    main()
