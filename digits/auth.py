"""DIGITS-style login: a user name kept in a signed session cookie; jobs belong to who made them."""

from __future__ import annotations

import re
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Regexp

from digits.web.responses import wants_json

blueprint = Blueprint("auth", __name__)

USERNAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"


class LoginForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[
            DataRequired("Enter a user name."),
            Regexp(USERNAME_PATTERN, message="Use letters, digits, '_', '.' and '-' (at most 64 characters)."),
        ],
    )
    next = HiddenField()


def current_username() -> str | None:
    return g.get("username")


def init_app(app) -> None:
    app.before_request(_load_user)
    app.before_request(check_csrf)
    app.context_processor(lambda: {"current_username": current_username()})
    # Forms carry the token as a plain hidden ``csrf_token`` input, checked once for all in check_csrf.
    app.jinja_env.globals["csrf_token"] = generate_csrf


def _load_user() -> None:
    # Scripts may name themselves per request with a ``username`` field, as DIGITS allowed.
    username = session.get("username")
    field = request.form.get("username") if request.method in ("POST", "PUT", "DELETE") else None
    if field and re.match(USERNAME_PATTERN, field) and request.endpoint != "auth.login":
        username = field
    g.username = username


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
    if urlsplit(origin).netloc != request.host:
        abort(403, description="Cross-site request refused.")
    token = request.headers.get("X-CSRFToken") or request.form.get("csrf_token")
    try:
        validate_csrf(token)
    except Exception as exc:  # ValidationError: the form page is stale or was not ours
        raise CSRFError("The form expired or was not sent by this site; reload the page and try again.") from exc


def login_required(view):
    """Views that create or change jobs need a user name."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if current_username() is None:
            if wants_json():
                abort(401, description="Log in first: POST /login with a username field, or send username.")
            flash("Log in to continue.", "warning")
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapper


def require_owner(job) -> None:
    """Only the job's owner may change it."""
    if current_username() is None:
        abort(401, description="Log in first: POST /login with a username field.")
    if current_username() != job.username:
        abort(403, description=f"Only {job.username}, who made this job, may change it.")


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        session["username"] = form.username.data
        session.permanent = True
        target = form.next.data or ""
        # Only follow local paths, never an absolute URL to another site.
        if not target.startswith("/") or target.startswith("//"):
            target = url_for("home.index")
        return redirect(target)
    if request.method == "POST" and wants_json():
        return {"errors": form.errors}, 400
    return render_template("login.html", form=form), 400 if form.errors else 200


@blueprint.route("/logout", methods=["GET", "POST"])
def logout():
    session.pop("username", None)
    return redirect(url_for("home.index"))
