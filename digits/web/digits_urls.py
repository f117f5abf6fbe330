"""DIGITS 6's page URLs where ours differ: each one redirects to the page that shows the same thing here.

Users bookmarked and scripted DIGITS' URLs (``/datasets/images/classification/explore?job_id=...&db=train``);
:data:`ALIASES` maps each such rule to our endpoint, the job id moving from the query string (or the
path) to where our route takes it, every other query value kept. GETs answer 302; POSTs answer 307, so
the client repeats the same POST, with its body, at our URL (where the usual login and ownership checks
apply). A redirect costs a URL build; it reads no file and names no job that the target would not.
Routes DIGITS had that we do not serve are listed, with the reason, in the README (REST API).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, abort, redirect, request, url_for

blueprint = Blueprint("digits_urls", __name__)

# DIGITS' explore pages took db names loosely ("train", "train_db", "Validation"...).
_STAGES = ("train", "val", "test")


@dataclass(frozen=True)
class Alias:
    """A DIGITS rule and the endpoint (or fixed path) that answers it here."""

    rule: str
    target: str  # "blueprint.endpoint", or a path starting with "/"
    methods: tuple[str, ...] = ("GET",)
    job_id: bool = True  # the target takes the job id (from the rule or ``?job_id=``)
    rename: dict[str, str] = field(default_factory=dict)  # DIGITS' path value -> our argument


ALIASES = (
    Alias("/datasets/images/classification/explore", "datasets.explore"),
    Alias("/datasets/images/generic/explore", "generic_datasets.records"),
    Alias("/datasets/generic/explore", "generic_datasets.records"),
    Alias("/datasets/summary", "datasets.show"),
    Alias("/datasets/images/classification/summary", "datasets.show"),
    Alias("/datasets/images/generic/summary", "datasets.show"),
    Alias("/datasets/generic/summary", "datasets.show"),
    Alias("/models/images/classification/large_graph", "models.show"),
    Alias("/models/images/generic/large_graph", "models.show"),
    Alias("/models/timeline_tracing", "models.show"),
    Alias("/models/<job_id>/to_pretrained", "pretrained.make_pretrained", ("POST",)),
    Alias("/models/images/generic/new/<extension_id>", "/models/images/generic/new", job_id=False),
    Alias(
        "/extension-static/<extension_type>/<extension_id>/<path:filename>",
        "extensions.static_file",
        job_id=False,
        rename={"extension_type": "kind"},
    ),
)


def _stage(db: str) -> str:
    lowered = db.lower()
    return next((stage for stage in _STAGES if stage in lowered), db)


def _follow(alias: Alias, **values):
    """Redirect the request to ``alias.target`` with the job id and the other values where ours take them."""
    args = request.args.to_dict()
    if alias.target.startswith("/"):
        return redirect(request.script_root + alias.target, 302)
    values = {alias.rename.get(name, name): value for name, value in values.items()}
    if alias.job_id:
        job_id = values.pop("job_id", None) or args.pop("job_id", None) or request.form.get("job_id")
        if not job_id:
            abort(400, description="Give the job's id (job_id).")
        values["job_id"] = job_id.strip()
    else:
        args.pop("job_id", None)
    if "db" in args:
        args["db"] = _stage(args["db"])
    return redirect(url_for(alias.target, **values, **args), 307 if request.method == "POST" else 302)


for _number, _alias in enumerate(ALIASES):
    blueprint.add_url_rule(
        _alias.rule,
        f"alias_{_number}",
        lambda _alias=_alias, **values: _follow(_alias, **values),
        methods=list(_alias.methods),
    )
