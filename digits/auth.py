"""Who is asking: accounts with passwords (Flask-Login sessions) or API tokens; DIGITS' single-user mode.

With ``auth = "password"`` (the default) every page needs a login, except logging in and the one-time
setup of the first admin; scripts send ``Authorization: Bearer <token>`` or log in with a password and
keep the cookie. With ``auth = "none"`` (loopback only) a user name alone logs in and reading needs no
login, as in DIGITS. Either way, creating, running or changing anything needs a login, and changing a
job needs its owner or an admin.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Regexp

from digits.accounts import MIN_PASSWORD, USERNAME_PATTERN, AccountError, Accounts, User
from digits.web.responses import wants_json
from digits.web.security import from_allowed_origin

log = logging.getLogger(__name__)
blueprint = Blueprint("auth", __name__)

# Endpoints anyone may reach in password mode: logging in, the first admin's setup, the files those pages use.
PUBLIC_ENDPOINTS = {"auth.login", "auth.setup", "static"}
# A random value per login, kept in the session cookie: logging out ends it on the server too.
SESSION_NONCE = "nonce"
# Failed logins allowed per address and per account name before answers are refused for a while.
FAILED_LOGINS = "10 per minute"


class LoginForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[
            DataRequired("Enter a user name."),
            Regexp(USERNAME_PATTERN, message="Use letters, digits, '_', '.' and '-' (at most 64 characters)."),
        ],
    )
    password = PasswordField("Password")
    next = HiddenField()


class SetupForm(FlaskForm):
    username = StringField("Admin user name", default="admin", validators=[
        DataRequired("Name the admin account."), Regexp(USERNAME_PATTERN, message="Use letters, digits, '_', '.', '-'.")
    ])  # fmt: skip
    password = PasswordField("Password", description=f"At least {MIN_PASSWORD} characters.")
    confirm = PasswordField("Password again", validators=[EqualTo("password", "The two passwords differ.")])
    token = HiddenField()


class SignedIn:
    """The logged-in user as Flask-Login holds it."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user: User, via_token: bool = False):
        self.user = user
        self.name = user.name
        self.is_admin = user.is_admin
        self.via_token = via_token

    def get_id(self) -> str:
        # The password's stamp goes into the session: changing the password logs out every other session.
        return f"{self.user.name}|{self.user.password_stamp}"


def accounts() -> Accounts:
    return current_app.extensions["digits"].accounts


def single_user() -> bool:
    """DIGITS' mode: a name logs in, no password (loopback only)."""
    return current_app.extensions["digits"].config.auth == "none"


def current_username() -> str | None:
    """The logged-in user's name, or None."""
    return current_user.name if current_user and current_user.is_authenticated else None


def is_admin() -> bool:
    return bool(current_username()) and current_user.is_admin


def init_app(app) -> None:
    """Sessions, tokens, the login wall, CSRF and the failed-login limit for ``app``."""
    manager = LoginManager(app)
    manager.user_loader(_load_session_user)
    manager.request_loader(_load_token_user)
    # Our own wall answers unauthenticated requests (JSON for scripts, the login page for browsers).
    manager.unauthorized_handler(_unauthorized)
    app.before_request(_require_login)
    app.before_request(check_csrf)
    app.context_processor(lambda: {"current_username": current_username(), "current_is_admin": is_admin(),
                                   "single_user": single_user()})  # fmt: skip
    # Forms carry the token as a plain hidden ``csrf_token`` input, checked once for all in check_csrf.
    app.jinja_env.globals["csrf_token"] = generate_csrf
    app.register_blueprint(blueprint)
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", default_limits=[])
    limited = limiter.limit(FAILED_LOGINS, methods=["POST"], deduct_when=_failed, error_message=_TOO_MANY)
    per_name = limiter.limit(FAILED_LOGINS, key_func=_login_name, methods=["POST"], deduct_when=_failed,
                             error_message=_TOO_MANY)  # fmt: skip
    app.view_functions["auth.login"] = limited(per_name(login))


_TOO_MANY = "Too many failed logins from here or for this account; wait a minute and try again."


def _failed(response) -> bool:
    return response.status_code in (400, 401, 403)


def _login_name() -> str:
    return "login:" + (request.form.get("username") or "")


def _load_session_user(session_id: str) -> SignedIn | None:
    name, _, stamp = session_id.partition("|")
    if single_user():
        return SignedIn(User(name))
    if accounts().session_ended(session.get(SESSION_NONCE, "")):
        return None
    user = accounts().get(name)
    if user is None or user.disabled or not hmac.compare_digest(stamp, user.password_stamp):
        return None
    return SignedIn(user)


_BAD_TOKEN = ("This API token is unknown, was revoked, or its account is disabled: make a new one on your account "
              "page, or ask an admin to enable the account.")  # fmt: skip


def _load_token_user(req) -> SignedIn | None:
    scheme, _, token = (req.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    user = accounts().user_of_token(token.strip())
    if user is None:
        abort(401, description=_BAD_TOKEN)
    return SignedIn(user, via_token=True)


def _unauthorized():
    if wants_json():
        how = "POST /login with username" if single_user() else "POST /login with username and password"
        abort(401, description=f"Log in first: {how}, or send Authorization: Bearer <API token>.")
    flash("Log in to continue.", "warning")
    # A refused POST has no page of its own: back to the form it came from (its path; safe_next refuses URLs).
    referrer = urlsplit(request.referrer or "")
    back = referrer.path + (f"?{referrer.query}" if referrer.query else "") if referrer.netloc == request.host else ""
    return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else back))


def _require_login():
    """Every POST, PUT and DELETE (they create, run or change something) needs a login; in password
    mode reading does too. Only the public pages are open."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    if single_user() and request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    if request.endpoint.startswith("extensions.") and request.endpoint.endswith("static"):
        return None  # plugins' CSS and scripts hold nothing private
    if not current_user.is_authenticated:
        return _unauthorized()
    return None


def check_csrf() -> None:
    """Require the CSRF token from browsers; let scripts (curl, requests) in.

    A browser always sends ``Origin`` (or at least ``Referer``) with a POST; a cross-site one is refused
    outright, a same-site one must carry the token. A request with neither header does not come from
    a page, so a forged cross-site request cannot look like it; DIGITS' scripts keep working.
    """
    if request.method in ("GET", "HEAD", "OPTIONS") or request.endpoint in (None, "static"):
        return
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return
    # Not compared with Host, which a DNS-rebinding page controls: the allowed host names, our scheme and port.
    if not from_allowed_origin(origin):
        abort(403, description="Cross-site request refused.")
    token = request.headers.get("X-CSRFToken") or request.form.get("csrf_token")
    try:
        validate_csrf(token)
    except Exception as exc:  # ValidationError: the form page is stale or was not ours
        raise CSRFError("The form expired or was not sent by this site; reload the page and try again.") from exc


def login_required(view):
    """Views that create, run or change anything need a logged-in user (in every mode)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if current_username() is None:
            return _unauthorized()
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    """Views that manage accounts need an admin."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if current_username() is None:
            return _unauthorized()
        if not is_admin():
            abort(403, description="Only an admin may manage accounts.")
        return view(*args, **kwargs)

    return wrapper


def can_change(job) -> bool:
    """Whether the logged-in user may change or delete ``job``: its owner, or an admin."""
    return current_username() is not None and (current_username() == job.username or is_admin())


def require_owner(job) -> None:
    """Only the job's owner (or an admin) may change it."""
    if current_username() is None:
        _abort_unauthorized()
    if not can_change(job):
        abort(403, description=f"Only {job.username}, who made this job, or an admin may change it.")


def _abort_unauthorized():
    abort(401, description="Log in first: POST /login with username and password, or send a Bearer token.")


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site; the home page otherwise (never another site)."""
    target = (target or "").strip()
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target or parts.scheme \
            or parts.netloc:  # fmt: skip
        return url_for("home.index")
    return target


def start_session(user: User) -> None:
    """Log ``user`` in with a fresh session (a new cookie, no data of an earlier one: no session fixation)."""
    session.clear()
    login_user(SignedIn(user), remember=False)
    session[SESSION_NONCE] = secrets.token_urlsafe(16)
    session.permanent = True


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    """Log in with a name and password (a name alone in single-user mode); the cookie keeps the session."""
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        if single_user():
            user = User(form.username.data)
        else:
            user = accounts().authenticate(form.username.data, form.password.data or "")
        if user is not None:
            start_session(user)
            return {"username": user.name} if wants_json() else redirect(safe_next(form.next.data))
        form.password.errors = ["Wrong user name or password, or the account is disabled (ask an admin)."]
    # Scripts (curl's */*) get JSON, as from the error handler; browsers ask for text/html.
    if request.method == "POST" and (wants_json() or "text/html" not in request.headers.get("Accept", "")):
        return {"errors": form.errors}, 401 if form.password.errors else 400
    status = 401 if form.password.errors else 400 if form.errors else 200
    return render_template("login.html", form=form), status


@blueprint.route("/logout", methods=["POST"])
def logout():
    """End the session, here and on the server: a copy of its cookie no longer logs anyone in."""
    nonce = session.get(SESSION_NONCE)
    if nonce and not single_user():
        lifetime = current_app.permanent_session_lifetime.total_seconds()
        accounts().end_session(nonce, keep_seconds=lifetime)
    logout_user()
    session.clear()
    return {"logged_out": True} if wants_json() else redirect(url_for("auth.login"))


@blueprint.route("/setup", methods=["GET", "POST"])
def setup():
    """The first admin account, made through the one-time link the server printed at its first start."""
    services = current_app.extensions["digits"]
    expected = services.setup_token
    given = request.values.get("token") or ""
    if not expected or accounts().count():
        abort(404, description="Setup is done: log in, or ask an admin for an account.")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        abort(403, description="Open the setup link the server printed on its console when it started.")
    form = SetupForm(token=given)
    if form.validate_on_submit():
        try:
            user = accounts().add(form.username.data, form.password.data or "", is_admin=True)
        except AccountError as exc:
            form.password.errors = [str(exc)]
        else:
            services.setup_token = None
            log.info("first admin %s created through the setup link", user.name)
            start_session(user)
            return redirect(url_for("home.index"))
    return render_template("setup.html", form=form), 400 if form.errors else 200


def new_setup_token() -> str:
    return secrets.token_urlsafe(24)
