"""Account pages: your password and API tokens (``/account``), and the admin's list of users (``/admin/users``).

Each has its ``.json`` twin. A new API token is shown once, in the answer that made it.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo

from digits.accounts import AccountError
from digits.auth import SignedIn, accounts, admin_required, current_username, login_required, single_user
from digits.form_fields import Checkbox
from digits.web.responses import wants_json

blueprint = Blueprint("account", __name__)
USER_ACTIONS = ("disable", "enable", "make_admin", "remove_admin", "reset_password", "remove")


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])
    new_password = PasswordField("New password", validators=[DataRequired("Enter a new password.")])
    confirm = PasswordField("New password again", validators=[EqualTo("new_password", "The two passwords differ.")])


class TokenForm(FlaskForm):
    label = StringField("What is it for?", default="script", description="e.g. the name of the script or machine")


class NewUserForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired("Name the account.")])
    password = PasswordField("Password", validators=[DataRequired("Give the account a password.")])
    is_admin = Checkbox("Admin (manages accounts and every job)")


@blueprint.before_request
def _accounts_exist():
    if single_user():
        abort(404, description="Single-user mode (--no-auth) has no accounts: a user name alone logs in.")


def _account_page(status: int = 200, new_token: str | None = None, **forms):
    name = current_username()
    data = {"user": accounts().get(name).to_dict(), "tokens": [t.to_dict() for t in accounts().tokens(name)]}
    if wants_json():
        return data, status
    forms = {"password_form": PasswordForm(formdata=None), "token_form": TokenForm(formdata=None), **forms}
    return render_template("account.html", data=data, new_token=new_token, **forms), status


def _errors(form, status: int = 400, **page):
    """The form's errors: as JSON, or on the page it came from."""
    if wants_json():
        return {"errors": form.errors}, status
    return page.pop("render")(status, **page)


@blueprint.route("/account.json")
@blueprint.route("/account")
@login_required
def show():
    return _account_page()


@blueprint.route("/account/password.json", methods=["POST"])
@blueprint.route("/account/password", methods=["POST"])
@login_required
def change_password():
    """Change your own password: the current one proves it is you (a left-open browser is not enough)."""
    form = PasswordForm()
    if form.validate():
        try:
            if accounts().authenticate(current_username(), form.current_password.data) is None:
                raise AccountError("That is not your current password.")
            accounts().set_password(current_username(), form.new_password.data)
            login_user(SignedIn(accounts().get(current_username())))  # this session goes on; the others end
        except AccountError as exc:
            form.current_password.errors = [str(exc)]
        else:
            return {"changed": True} if wants_json() else _flash_back("Password changed.", "account.show")
    return _errors(form, render=_account_page, password_form=form)


@blueprint.route("/account/tokens.json", methods=["POST"])
@blueprint.route("/account/tokens", methods=["POST"])
@login_required
def new_token():
    """A new API token for scripts (``Authorization: Bearer <token>``): shown once, in this answer only."""
    form = TokenForm()
    token, secret = accounts().new_token(current_username(), form.label.data or "")
    if wants_json():
        return {**token.to_dict(), "token": secret}
    return _account_page(new_token=secret)


# Token ids are SQLite integers: a larger number in the URL names no token (and SQLite would refuse it).
MAX_TOKEN_ID = 2**63 - 1


@blueprint.route("/account/tokens/<int:token_id>/revoke.json", methods=["POST"])
@blueprint.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@blueprint.route("/account/tokens/<int:token_id>", methods=["DELETE"])
@login_required
def revoke_token(token_id: int):
    try:
        if token_id > MAX_TOKEN_ID:
            raise AccountError(f"{current_username()} has no token {token_id}.")
        accounts().revoke_token(current_username(), token_id)
    except AccountError as exc:
        abort(404, description=str(exc))
    return {"revoked": token_id} if wants_json() else _flash_back("Token revoked.", "account.show")


def _flash_back(message: str, endpoint: str):
    flash(message, "success")
    return redirect(url_for(endpoint))


def _users_page(status: int = 200, form: NewUserForm | None = None):
    users = [u.to_dict() for u in accounts().all()]
    if wants_json():
        return {"users": users}, status
    return render_template("admin_users.html", users=users, form=form or NewUserForm(formdata=None)), status


@blueprint.route("/admin/users.json")
@blueprint.route("/admin/users")
@admin_required
def users():
    return _users_page()


@blueprint.route("/admin/users.json", methods=["POST"])
@blueprint.route("/admin/users", methods=["POST"])
@admin_required
def add_user():
    form = NewUserForm()
    if form.validate():
        try:
            user = accounts().add(form.username.data.strip(), form.password.data, is_admin=form.is_admin.data)
        except AccountError as exc:
            form.username.errors = [str(exc)]
        else:
            return user.to_dict() if wants_json() else _flash_back(f"Account {user.name} created.", "account.users")
    return _errors(form, render=_users_page, form=form)


@blueprint.route("/admin/users/<name>.json", methods=["POST"])
@blueprint.route("/admin/users/<name>", methods=["POST"])
@admin_required
def change_user(name: str):
    """``action``: disable, enable, make_admin, remove_admin, reset_password (with ``password``) or remove."""
    action = request.form.get("action", "")
    if action not in USER_ACTIONS:
        abort(400, description=f"action must be one of {', '.join(USER_ACTIONS)}.")
    try:
        _apply(name, action, request.form.get("password", ""))
    except AccountError as exc:
        abort(400, description=str(exc))
    done = f"{name}: {action.replace('_', ' ')} done."
    return {"user": name, "action": action} if wants_json() else _flash_back(done, "account.users")


def _apply(name: str, action: str, password: str) -> None:
    flags = {"disable": {"disabled": True}, "enable": {"disabled": False}, "make_admin": {"is_admin": True},
             "remove_admin": {"is_admin": False}}  # fmt: skip
    if action in flags:
        accounts().set_flags(name, **flags[action])
    elif action == "reset_password":
        accounts().set_password(name, password)
    else:
        accounts().remove(name)
