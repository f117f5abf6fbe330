"""The home page: every job, newest first, updated live."""

from __future__ import annotations

from flask import Blueprint, render_template

from digits import __version__
from digits.jobs import JobStore
from digits.web.services import current_services

blueprint = Blueprint("home", __name__)


def job_lists(store: JobStore) -> dict[str, list[dict]]:
    with store.lock:
        jobs = [j.summary() for j in store.all()]
    return {
        "datasets": [j for j in jobs if j["type"] == "dataset"],
        "models": [j for j in jobs if j["type"] == "model"],
        "pretrained_models": [j for j in jobs if j["type"] == "pretrained"],
    }


@blueprint.route("/")
def index():
    return render_template("home.html", jobs=job_lists(current_services().store))


@blueprint.route("/index.json")
def index_json():
    return {"version": __version__, **job_lists(current_services().store)}
