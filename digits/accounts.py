"""Accounts: users with password hashes and API tokens, in one SQLite file in the jobs directory.

Passwords are hashed with Werkzeug's scrypt (salted, slow on purpose). API tokens are long random strings
shown once; only their SHA-256 is kept (a token has 256 bits of entropy, so a fast hash is safe and
lets every request look its token up by hash). Nothing here imports Flask; the command line
(``python -m digits users ...``) and the web app share it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

DB_FILE = "accounts.db"
USERNAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
MIN_PASSWORD = 8
TOKEN_PREFIX = "dgt_"
# Checked against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password of anyone", method="scrypt")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ended_sessions (
    nonce TEXT PRIMARY KEY,
    ended REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    label TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    last_used REAL
);
"""


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class User:
    """An account as the rest of the app sees it (never its password hash)."""

    name: str
    is_admin: bool = False
    disabled: bool = False
    created: float = 0.0
    # Changes whenever the password does: a session remembers it, so a new password ends older sessions.
    password_stamp: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "is_admin": self.is_admin, "disabled": self.disabled, "created": self.created}


@dataclass(frozen=True)
class Token:
    """An API token's record: what it is called and when it was made and last used (not the token)."""

    id: int
    username: str
    label: str
    created: float
    last_used: float | None

    def to_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "created": self.created, "last_used": self.last_used}


def check_username(name: str) -> str:
    """``name`` if it can name an account; else AccountError saying which names can."""
    if not re.match(USERNAME_PATTERN, name or ""):
        raise AccountError("A user name has letters, digits, '_', '.' and '-' (at most 64 characters).")
    return name


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"A password has at least {MIN_PASSWORD} characters.")
    return password


def _user(row: sqlite3.Row) -> User:
    stamp = hashlib.sha256(row["password_hash"].encode()).hexdigest()[:16]
    return User(row["name"], bool(row["is_admin"]), bool(row["disabled"]), row["created"], stamp)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """The accounts database: safe to use from several threads (one connection per call)."""

    # A token's last use is written at most this often: a script polling every second writes rarely.
    LAST_USED_RESOLUTION = 60.0

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        with self._connect() as db:
            db.executescript(SCHEMA)
        self.path.chmod(0o600)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        try:
            with db:  # one transaction: committed on success, rolled back on an exception
                yield db
        finally:
            db.close()

    # -- users ----------------------------------------------------------------------------------------
    def count(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM users").fetchone()[0]

    def add(self, name: str, password: str, is_admin: bool = False) -> User:
        """Create an account; AccountError if the name is taken or name or password is not acceptable."""
        check_username(name)
        check_password(password)
        with self._write_lock, self._connect() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise AccountError(f"There is already an account {name!r}.")
            db.execute(
                "INSERT INTO users (name, password_hash, is_admin, created) VALUES (?, ?, ?, ?)",
                (name, generate_password_hash(password, method="scrypt"), int(is_admin), time.time()),
            )
        return self.get(name)

    def get(self, name: str) -> User | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return _user(row) if row else None

    def all(self) -> list[User]:
        with self._connect() as db:
            return [_user(row) for row in db.execute("SELECT * FROM users ORDER BY name").fetchall()]

    def authenticate(self, name: str, password: str) -> User | None:
        """The enabled account ``name`` if ``password`` is its password; None otherwise (same cost either way)."""
        with self._connect() as db:
            row = db.execute("SELECT password_hash FROM users WHERE name = ?", (name or "",)).fetchone()
        stored = row["password_hash"] if row else _DUMMY_HASH
        if not check_password_hash(stored, password or "") or row is None:
            return None
        user = self.get(name)
        return user if user and not user.disabled else None

    def _require(self, name: str) -> None:
        if self.get(name) is None:
            raise AccountError(f"There is no account {name!r}.")

    def set_password(self, name: str, password: str) -> None:
        check_password(password)
        self._require(name)
        with self._write_lock, self._connect() as db:
            db.execute(
                "UPDATE users SET password_hash = ? WHERE name = ?",
                (generate_password_hash(password, method="scrypt"), name),
            )

    def set_flags(self, name: str, *, is_admin: bool | None = None, disabled: bool | None = None) -> User:
        """Make an account admin or not, enabled or disabled; the last enabled admin stays one."""
        self._require(name)
        with self._write_lock, self._connect() as db:
            if is_admin is not None:
                db.execute("UPDATE users SET is_admin = ? WHERE name = ?", (int(is_admin), name))
            if disabled is not None:
                db.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))
            self._keep_an_admin(db)
        return self.get(name)

    def remove(self, name: str) -> None:
        """Delete an account and its tokens (its jobs stay, still naming it as their owner)."""
        self._require(name)
        with self._write_lock, self._connect() as db:
            db.execute("DELETE FROM users WHERE name = ?", (name,))
            self._keep_an_admin(db)

    @staticmethod
    def _keep_an_admin(db: sqlite3.Connection) -> None:
        # Raising rolls the transaction back: nobody locks the server out of its own admin pages.
        admins = db.execute("SELECT COUNT(*) FROM users WHERE is_admin = 1 AND disabled = 0").fetchone()[0]
        others = db.execute("SELECT COUNT(*) FROM users").fetchone()[0]
        if others and not admins:
            raise AccountError("That would leave no enabled admin; make another account admin first.")

    # -- sessions -------------------------------------------------------------------------------------
    # A session lives in a signed cookie; logging out records its nonce, so a copy of the cookie is refused too.
    def end_session(self, nonce: str, keep_seconds: float) -> None:
        """Refuse the session ``nonce`` from now on; ended sessions older than ``keep_seconds`` are forgotten
        (their cookies have expired by then)."""
        now = time.time()
        with self._write_lock, self._connect() as db:
            db.execute("INSERT OR REPLACE INTO ended_sessions (nonce, ended) VALUES (?, ?)", (nonce, now))
            db.execute("DELETE FROM ended_sessions WHERE ended < ?", (now - keep_seconds,))

    def session_ended(self, nonce: str) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM ended_sessions WHERE nonce = ?", (nonce,)).fetchone() is not None

    # -- API tokens -----------------------------------------------------------------------------------
    def new_token(self, name: str, label: str) -> tuple[Token, str]:
        """A new API token for ``name``: its record and the token itself (shown once, never stored)."""
        self._require(name)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        label = (label or "").strip()[:100] or "token"
        with self._write_lock, self._connect() as db:
            cursor = db.execute(
                "INSERT INTO tokens (username, label, token_hash, created) VALUES (?, ?, ?, ?)",
                (name, label, _token_hash(secret), time.time()),
            )
            token_id = cursor.lastrowid
        return next(t for t in self.tokens(name) if t.id == token_id), secret

    def tokens(self, name: str) -> list[Token]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, username, label, created, last_used FROM tokens WHERE username = ? ORDER BY id", (name,)
            ).fetchall()
        return [Token(r["id"], r["username"], r["label"], r["created"], r["last_used"]) for r in rows]

    def revoke_token(self, name: str, token_id: int) -> None:
        with self._write_lock, self._connect() as db:
            deleted = db.execute("DELETE FROM tokens WHERE id = ? AND username = ?", (token_id, name)).rowcount
        if not deleted:
            raise AccountError(f"{name} has no token {token_id}.")

    def user_of_token(self, secret: str) -> User | None:
        """The enabled account a token belongs to (its last use recorded), or None for an unknown token."""
        if not (secret or "").startswith(TOKEN_PREFIX):
            return None
        with self._connect() as db:
            row = db.execute(
                "SELECT id, username, last_used FROM tokens WHERE token_hash = ?", (_token_hash(secret),)
            ).fetchone()
        if row is None:
            return None
        now = time.time()
        if row["last_used"] is None or now - row["last_used"] > self.LAST_USED_RESOLUTION:
            with self._connect() as db:
                db.execute("UPDATE tokens SET last_used = ? WHERE id = ?", (now, row["id"]))
        user = self.get(row["username"])
        return user if user and not user.disabled else None


def open_accounts(jobs_dir: Path) -> Accounts:
    """The accounts database of a jobs directory."""
    return Accounts(Path(jobs_dir) / DB_FILE)
