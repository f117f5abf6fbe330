"""Configuration from the environment (DIGITS' variable names where it had them) and command-line flags."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path


def _default_jobs_dir() -> Path:
    return Path(os.environ.get("DIGITS_JOBS_DIR") or Path.cwd() / "digits-jobs")


@dataclass
class Config:
    """Everything the server needs to start; every field has a default that works on a fresh machine."""

    jobs_dir: Path = field(default_factory=_default_jobs_dir)
    host: str = "127.0.0.1"
    port: int = 5000
    url_prefix: str = ""
    logfile: Path | None = None
    log_level: str = "info"
    # Parallel CPU-bound tasks (database creation, CPU training); each may use several cores itself.
    cpu_slots: int = 1
    # GPU indices the scheduler may hand out; None means every GPU NVML finds.
    gpus: list[int] | None = None
    secret_key: str | None = None
    testing: bool = False
    # The warm inference worker keeps this many models loaded, within this much memory.
    inference_models: int = 4
    inference_memory_mb: int = 4096
    # Classify Many lists longer than this run as a background job with progress instead of in the request.
    inference_sync_limit: int = 1000
    # TensorBoard servers started from the pages: at most this many at once, each stopped after this many idle seconds.
    tensorboard_max: int = 4
    tensorboard_idle: int = 600
    # "password": accounts with passwords (the default); "none": DIGITS' single-user mode, loopback only.
    auth: str = "password"
    # Server paths that forms may name (folders, list files, databases): these directories and below.
    data_roots: list[Path] = field(default_factory=list)
    # Host names the server answers (DNS rebinding); empty: localhost, loopback, the bound address, the host name.
    allowed_hosts: list[str] = field(default_factory=list)
    # Proxies in front of the server (counted hops) whose X-Forwarded-* headers are trusted; 0: none.
    trusted_proxies: int = 0
    session_hours: int = 24 * 7
    # Images named by URL (image_url, an image_path or list line that is one): fetched over http(s) when on,
    # each at most this many MiB and seconds. The server fetches what users name; 0 turns it off.
    fetch_urls: bool = True
    fetch_max_mb: int = 16
    fetch_timeout: float = 10.0
    # Work one request may cause: jobs of one sweep; exports and Visualize runs at once (the rest answered 503);
    # seconds an inference request waits for the warm worker before a 503.
    max_sweep: int = 64
    max_exports: int = 2
    max_visualizations: int = 4
    inference_wait: float = 30.0
    # Request bodies in MiB: forms and JSON edits; uploads (list files, archives, images).
    max_form_mb: int = 1
    max_upload_mb: int = 1024
    # An uploaded model archive may unpack to this many times its size, with at most this many members.
    archive_max_ratio: float = 20.0
    archive_max_members: int = 10_000
    # A Ray cluster to run tasks on ("ray://HOST:PORT", a GCS "HOST:PORT", or "auto": the one started on this
    # machine); None: tasks run as children of this server.
    cluster: str | None = None

    @classmethod
    def from_env(cls, **overrides) -> Config:
        """Read ``DIGITS_*`` variables, then apply ``overrides`` (from flags or tests)."""
        env = os.environ
        values: dict = {}
        if env.get("DIGITS_URL_PREFIX"):
            values["url_prefix"] = env["DIGITS_URL_PREFIX"]
        if env.get("DIGITS_LOGFILE_FILENAME"):
            values["logfile"] = Path(env["DIGITS_LOGFILE_FILENAME"])
        if env.get("DIGITS_LOGFILE_LEVEL"):
            values["log_level"] = env["DIGITS_LOGFILE_LEVEL"]
        if env.get("DIGITS_CPU_SLOTS"):
            values["cpu_slots"] = int(env["DIGITS_CPU_SLOTS"])
        # NVML ignores CUDA_VISIBLE_DEVICES, so restricting the pool has a variable of its own.
        if env.get("DIGITS_GPUS"):
            values["gpus"] = [int(g) for g in env["DIGITS_GPUS"].split(",") if g.strip()]
        for name in ("inference_models", "inference_memory_mb", "inference_sync_limit", "tensorboard_max",
                     "tensorboard_idle", "max_sweep", "max_exports", "max_visualizations", "max_form_mb",
                     "max_upload_mb", "archive_max_members"):  # fmt: skip
            if env.get(f"DIGITS_{name.upper()}"):
                values[name] = int(env[f"DIGITS_{name.upper()}"])
        for name in ("inference_wait", "archive_max_ratio"):
            if env.get(f"DIGITS_{name.upper()}"):
                values[name] = float(env[f"DIGITS_{name.upper()}"])
        if env.get("DIGITS_AUTH"):
            values["auth"] = env["DIGITS_AUTH"]
        if env.get("DIGITS_DATA_ROOTS"):
            values["data_roots"] = [Path(p) for p in env["DIGITS_DATA_ROOTS"].split(os.pathsep) if p.strip()]
        if env.get("DIGITS_ALLOWED_HOSTS"):
            values["allowed_hosts"] = [h.strip() for h in env["DIGITS_ALLOWED_HOSTS"].split(",") if h.strip()]
        if env.get("DIGITS_TRUSTED_PROXIES"):
            values["trusted_proxies"] = int(env["DIGITS_TRUSTED_PROXIES"])
        if env.get("DIGITS_SESSION_HOURS"):
            values["session_hours"] = int(env["DIGITS_SESSION_HOURS"])
        if env.get("DIGITS_FETCH_URLS"):
            values["fetch_urls"] = env["DIGITS_FETCH_URLS"].strip().lower() not in ("0", "false", "no", "off")
        if env.get("DIGITS_FETCH_MAX_MB"):
            values["fetch_max_mb"] = int(env["DIGITS_FETCH_MAX_MB"])
        if env.get("DIGITS_FETCH_TIMEOUT"):
            values["fetch_timeout"] = float(env["DIGITS_FETCH_TIMEOUT"])
        if env.get("DIGITS_CLUSTER"):
            values["cluster"] = env["DIGITS_CLUSTER"].strip()
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        config.jobs_dir = Path(config.jobs_dir).resolve()
        # Default roots: the jobs directory and the directory the server started in.
        config.data_roots = [Path(r).resolve() for r in config.data_roots or [config.jobs_dir, Path.cwd()]]
        if config.auth not in ("password", "none"):
            raise ValueError(f"DIGITS_AUTH must be 'password' or 'none', not {config.auth!r}")
        config.url_prefix = normalize_prefix(config.url_prefix)
        return config

    def host_allowlist(self) -> set[str]:
        """The host names (without port) requests may name in ``Host``: the configured ones, or the defaults."""
        if self.allowed_hosts:
            return {h.lower() for h in self.allowed_hosts}
        return {"localhost", "127.0.0.1", "::1", self.host.lower(), socket.gethostname().lower(),
                socket.getfqdn().lower()} - {"0.0.0.0", "::"}  # fmt: skip

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level.upper()) if isinstance(self.log_level, str) else self.log_level

    def load_secret_key(self) -> str:
        """The session-signing key: generated once, kept in the jobs directory so logins survive restarts."""
        if self.secret_key:
            return self.secret_key
        path = self.jobs_dir / ".secret_key"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            key = secrets.token_hex(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key)
            return key


def normalize_prefix(prefix: str) -> str:
    """``digits/`` -> ``/digits``; empty stays empty."""
    prefix = (prefix or "").strip().strip("/")
    return f"/{prefix}" if prefix else ""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name to bind) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_single_user_host(config: Config) -> None:
    """Refuse single-user mode on an address others reach: ValueError saying what to do instead."""
    if config.auth == "none" and not is_loopback(config.host):
        raise ValueError(
            f"--no-auth (DIGITS_AUTH=none) serves loopback addresses only, not {config.host}: "
            "anyone who reaches the port could run code. Use accounts, or --host 127.0.0.1."
        )
