"""``python -m digits`` / ``digits-server``: start the web server; ``python -m digits users ...``: manage accounts."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Sequence

from gunicorn.app.base import BaseApplication

from digits import __version__
from digits.accounts import AccountError, open_accounts
from digits.config import Config, check_single_user_host


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digits-server", description="Run the DIGITS web server.")
    parser.add_argument("-p", "--port", type=int, default=None, help="port to listen on (default 5000)")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument(
        "--jobs-dir", default=None, help="where jobs are kept (default $DIGITS_JOBS_DIR or ./digits-jobs)"
    )
    parser.add_argument("--url-prefix", default=None, help="serve under this path (default $DIGITS_URL_PREFIX)")
    parser.add_argument("--debug", action="store_true", help="log debug messages")
    parser.add_argument("--no-auth", action="store_true",
                        help="single-user mode: a user name alone logs in (loopback addresses only)")  # fmt: skip
    parser.add_argument("--cluster", default=None,
                        help="run tasks on a Ray cluster: ray://HOST:PORT or auto ($DIGITS_CLUSTER)")  # fmt: skip
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
        from digits.tools.predicting import freeze_loaded
        from digits.web.services import services_of

        config = self.digits_config
        app = create_app(config)
        # What the app holds from now until it stops (Flask, its routes, the job store: ~90,000 objects) stays
        # out of the garbage collector's full passes, which walked it all every few requests (~40 ms each).
        freeze_loaded()
        base = f"http://{config.host}:{config.port}{config.url_prefix}"
        logging.getLogger("digits").info("DIGITS %s on %s/ with jobs in %s", __version__, base, config.jobs_dir)
        print(how_to_log_in(base, config, services_of(app).setup_token), file=sys.stderr, flush=True)
        return app


def how_to_log_in(base: str, config: Config, setup_token: str | None) -> str:
    """What the console says about logging in, for the mode and state the server started in."""
    if config.auth == "none":
        return f"Single-user mode: open {base}/login and give any user name (no password)."
    if setup_token:
        return (f"No account exists yet. Create the admin account here (this link works once, until the server "
                f"stops):\n    {base}/setup?token={setup_token}")  # fmt: skip
    return (f"Log in at {base}/login. Accounts: python -m digits users add NAME [--admin] "
            f"--jobs-dir {config.jobs_dir}")  # fmt: skip


def build_users_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digits users", description="Manage DIGITS accounts.")
    parser.add_argument("--jobs-dir", default=None, help="the server's jobs directory (default $DIGITS_JOBS_DIR)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create an account (asks for its password)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="the account may manage accounts and every job")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    commands.add_parser("list", help="list the accounts")
    passwd = commands.add_parser("passwd", help="set an account's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    for name, what in (("disable", "refuse an account's logins and tokens"), ("enable", "let a disabled account in"),
                       ("remove", "delete an account (its jobs stay)")):  # fmt: skip
        commands.add_parser(name, help=what).add_argument("name")
    return parser


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise AccountError("The two passwords differ.")
    return first


def users(argv: Sequence[str]) -> int:
    """``python -m digits users ...``: add, list, passwd, disable, enable, remove; returns the exit status."""
    args = build_users_parser().parse_args(argv)
    accounts = open_accounts(Config.from_env(jobs_dir=args.jobs_dir).jobs_dir)
    try:
        if args.command == "add":
            user = accounts.add(args.name, _read_password(args.password_stdin), is_admin=args.admin)
            print(f"created {user.name}" + (" (admin)" if user.is_admin else ""))
        elif args.command == "list":
            for user in accounts.all():
                flags = [f for f, on in (("admin", user.is_admin), ("disabled", user.disabled)) if on]
                print(user.name + (f"  ({', '.join(flags)})" if flags else ""))
        elif args.command == "passwd":
            accounts.set_password(args.name, _read_password(args.password_stdin))
            print(f"password of {args.name} changed")
        elif args.command in ("disable", "enable"):
            accounts.set_flags(args.name, disabled=args.command == "disable")
            print(f"{args.name} {args.command}d")
        else:
            accounts.remove(args.name)
            print(f"removed {args.name}")
    except AccountError as exc:
        print(f"digits users: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["users"]:
        sys.exit(users(argv[1:]))
    args = build_parser().parse_args(argv)
    config = Config.from_env(port=args.port, host=args.host, jobs_dir=args.jobs_dir, url_prefix=args.url_prefix,
                             auth="none" if args.no_auth else None, cluster=args.cluster)  # fmt: skip
    if args.debug:
        config.log_level = "debug"
    configure_logging(config)
    try:
        check_single_user_host(config)  # before the port is bound: nobody reaches a password-less server
    except ValueError as exc:
        sys.exit(f"digits-server: {exc}")
    DigitsServer(config).run()


if __name__ == "__main__":
    main()
