"""The published description of the REST API: an OpenAPI 3 document of every JSON route, at ``/api/openapi.json``.

Written by hand, as data: the answers' shapes and the form fields are what script writers need and cannot be
read off the url_map (the views read ``request.form``). ``tests/test_openapi.py`` checks every path and
method here against the app's routes, so the document cannot drift from them. Like every page it needs a
login in password mode; it costs one dict copy per request.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, request

from digits import __version__

blueprint = Blueprint("api", __name__)

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
FILE: Schema = {"type": "string", "format": "binary"}
OBJECT: Schema = {"type": "object"}
NULLABLE_STRING: Schema = {"type": "string", "nullable": True}
JOB_ID: Schema = {"type": "string", "description": "A job id such as 20160809-103210-ccbf."}
STATUS: Schema = {"type": "string", "enum": ["Initialized", "Waiting", "Running", "Done", "Aborted", "Error"]}
ERRORS: Schema = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "description": "What to change: a message, or {field: [messages]} for a form.",
            "oneOf": [STRING, {"type": "object", "additionalProperties": True}],
        }
    },
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: tuple[str, ...] = (), **properties: Schema) -> Schema:
    """An object schema with these properties (others allowed: answers grow fields over time)."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def form(description: str = "", files: tuple[str, ...] = (), **fields: Schema) -> Schema:
    """A form body (multipart; URL-encoded too where no file is sent). Unknown fields are ignored by the
    server, as DIGITS' forms did."""
    properties = {**fields, **{name: FILE for name in files}}
    schema = {"type": "object", "properties": properties, "additionalProperties": True}
    content = {"multipart/form-data": {"schema": schema}}
    if not files:
        content["application/x-www-form-urlencoded"] = {"schema": schema}
    body: Schema = {"required": True, "content": content}
    if description:
        body["description"] = description
    return body


def answer(description: str, schema: Schema | None = None) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema or OBJECT}}}


def operation(summary: str, ok: Schema, body: Schema | None = None, params: list[Schema] | None = None,
              ok_status: str = "200", **more: Schema) -> Schema:  # fmt: skip
    """One operation: its 2xx answer plus the JSON errors every route may give."""
    responses = {
        ok_status: ok,
        "400": {"$ref": "#/components/responses/BadRequest"},
        "401": {"$ref": "#/components/responses/LoginNeeded"},
        "403": {"$ref": "#/components/responses/Forbidden"},
        "404": {"$ref": "#/components/responses/NotFound"},
        **more,
    }
    op: Schema = {"summary": summary, "responses": responses}
    if body:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    return op


def query(name: str, schema: Schema, description: str = "", many: bool = False) -> Schema:
    param: Schema = {"name": name, "in": "query", "schema": array(schema) if many else schema}
    if description:
        param["description"] = description
    if many:
        param.update(style="form", explode=True)
    return param


JOB_PATH = [{"name": "job_id", "in": "path", "required": True, "schema": JOB_ID}]
SUMMARY = obj(("id", "name", "type", "status"), id=JOB_ID, name=STRING, type=STRING, kind=STRING, status=STATUS,
              username=STRING, group=STRING, created={"type": "number"}, progress={"type": "number"},
              interrupted=BOOLEAN)  # fmt: skip
CREATED = obj(("id", "name", "status"), id=JOB_ID, name=STRING, status=STATUS)
# A sweep (comma lists in learning_rate or batch_size) makes several jobs and answers them all.
CREATED_ONE_OR_MORE = {"oneOf": [CREATED, obj(("jobs",), jobs=array(CREATED))]}
BACKGROUND = obj(("id", "status", "url"), id=JOB_ID, status=STATUS, url=STRING)
PREDICTIONS = array(array({"oneOf": [STRING, {"type": "number"}]}))

DATASET_FIELDS = {name: STRING for name in (
    "dataset_name group_name encoding resize_channels resize_width resize_height resize_mode backend compression "
    "method folder_train folder_pct_val folder_pct_test folder_train_min_per_class folder_train_max_per_class "
    "has_val_folder folder_val has_test_folder folder_test textfile_use_local_files textfile_train_images "
    "textfile_local_train_images textfile_train_folder textfile_use_val textfile_local_val_images "
    "textfile_val_folder textfile_use_test textfile_local_test_images textfile_test_folder textfile_shuffle "
    "textfile_labels_file textfile_local_labels_file"
).split()}  # fmt: skip
MODEL_FIELDS = {name: STRING for name in (
    "dataset model_name group_name method framework standard_networks previous_networks pretrained_networks "
    "custom_network custom_network_snapshot train_epochs snapshot_interval val_interval random_seed batch_size "
    "batch_accumulation solver_type learning_rate lr_policy lr_step_size lr_step_gamma lr_multistep_values "
    "select_gpu select_gpus select_gpu_count shuffle crop_size use_mean early_stopping_metric "
    "early_stopping_patience"
).split()}  # fmt: skip
INFERENCE_FIELDS = {"job_id": JOB_ID, "snapshot_epoch": STRING}
ONE_IMAGE = {**INFERENCE_FIELDS, "image_path": STRING, "image_url": STRING, "show_visualizations": STRING}
MANY_IMAGES = {**INFERENCE_FIELDS, "image_list_path": STRING, "image_folder": STRING, "num_test_images": STRING,
               "db": {"type": "string", "enum": ["", "val", "test"]}}  # fmt: skip


def _paths() -> dict[str, Schema]:
    job = {"parameters": JOB_PATH}
    status = {
        "get": operation(
            "A job's status",
            answer(
                "Its status",
                obj(("status", "type", "name"), status=STATUS, type=STRING, name=STRING, error=NULLABLE_STRING),
            ),
        )  # fmt: skip
    }
    abort = {"post": operation("Abort the job (owner or admin)", answer("Aborted", obj(("id", "status"))))}
    delete = {
        "delete": operation(
            "Delete the job (owner or admin)",
            answer("Deleted", obj(("id", "deleted"), id=JOB_ID, deleted=BOOLEAN)),
            **{"409": answer("Other jobs use it", {**ERRORS, "properties": {**ERRORS["properties"],
                                                                             "dependents": array(OBJECT)}})},
        )
    }  # fmt: skip
    edit_body = form(name=STRING, notes=STRING, group=STRING)
    edit_body["content"]["application/json"] = edit_body["content"]["multipart/form-data"]
    edit = operation("Rename a job, or change its notes or group (owner or admin)", answer("The job", SUMMARY),
                     edit_body)  # fmt: skip
    create_dataset = operation("Create an image dataset (DIGITS' fields)", answer("Queued", CREATED),
                               form(**DATASET_FIELDS))  # fmt: skip
    create_model = operation(
        "Create a model (one job per point of a learning_rate/batch_size sweep)",
        answer("Queued", CREATED_ONE_OR_MORE),
        form(**MODEL_FIELDS),
    )
    infer_one = operation(
        "Run the model on one image",
        answer("Outputs", obj(predictions=PREDICTIONS, outputs=OBJECT)),
        form("image_file, image_path or image_url", files=("image_file",), **ONE_IMAGE),
        **{"503": {"$ref": "#/components/responses/Busy"}},
    )
    infer_many = operation(
        "Run the model on a list of images (long lists answer 202: poll the url's .json)",
        answer("Results", obj(classifications=OBJECT, summary=OBJECT, errors=array(OBJECT))),
        form("image_list, image_list_path, or db", files=("image_list",), **MANY_IMAGES),
        **{"202": answer("Running in the background", BACKGROUND), "503": {"$ref": "#/components/responses/Busy"}},
    )
    top_n = copy.deepcopy(infer_many)
    top_n["summary"] = "The images that score highest per class"
    top_n["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["top_n"] = INTEGER
    top_n["responses"]["200"] = answer("The best images per class", obj(top_n=OBJECT))
    infer_db = operation(
        "Run the model on a database of its dataset (202: poll the url's .json)",
        answer("Results", OBJECT),
        form(**INFERENCE_FIELDS, db=STRING),
        **{"202": answer("Running in the background", BACKGROUND), "503": {"$ref": "#/components/responses/Busy"}},
    )
    infer_extension = operation("Run the model on a data extension's inference input", answer("Results"),
                                form(**INFERENCE_FIELDS))  # fmt: skip
    tokens = obj(("id", "label"), id=INTEGER, label=STRING, created={"type": "number"},
                 last_used={"type": "number", "nullable": True})  # fmt: skip
    user = obj(("name",), name=STRING, is_admin=BOOLEAN, disabled=BOOLEAN, created={"type": "number"})
    revoke = operation("Revoke one of your API tokens", answer("Revoked", obj(("revoked",), revoked=INTEGER)))
    change_user = {
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": STRING}],
        "post": operation(
            "Change an account (admins only)",
            answer("Done", obj(("user", "action"), user=STRING, action=STRING)),
            form(action={"type": "string", "enum": ["disable", "enable", "make_admin", "remove_admin",
                                                    "reset_password", "remove"]}, password=STRING),
        ),
    }  # fmt: skip
    pretrained_files = form(
        "weights and network (a model file), labels, a mean image",
        files=("weights_file", "model_def_file", "labels_file", "mean_file"),
        job_name=STRING, framework=STRING, image_type=STRING, resize_mode=STRING, width=STRING, height=STRING,
        subtract_mean=STRING, crop_size=STRING,
    )  # fmt: skip
    return {
        "/api/openapi.json": {"get": operation("This document", answer("OpenAPI 3", OBJECT))},
        "/login": {
            "post": operation(
                "Log in: the answer's cookie keeps the session (single-user mode: username alone)",
                answer("Logged in", obj(("username",), username=STRING)),
                form(username=STRING, password=STRING),
            )
        },
        "/logout": {"post": operation("End the session", answer("Logged out", obj(logged_out=BOOLEAN)))},
        "/index.json": {
            "get": operation(
                "Every job, newest first, the server's version and its Ray cluster (null without one: its "
                "address, problem, and nodes with what they have and what DIGITS holds)",
                answer(
                    "The jobs",
                    obj(
                        ("version", "datasets", "models"),
                        version=STRING,
                        datasets=array(SUMMARY),
                        models=array(SUMMARY),
                        pretrained_models=array(SUMMARY),
                        cluster={"type": "object", "nullable": True},
                    ),
                ),
            )
        },  # fmt: skip
        "/extensions.json": {"get": operation("The data and view extensions this server has", answer("Them"))},
        "/account.json": {
            "get": operation("Your account and API tokens", answer("The account", obj(tokens=array(tokens))))
        },
        "/account/password.json": {
            "post": operation(
                "Change your password (ends your other sessions)",
                answer("Changed", obj(("changed",), changed=BOOLEAN)),
                form(current_password=STRING, new_password=STRING, confirm=STRING),
            )
        },
        "/account/tokens.json": {
            "post": operation(
                "A new API token, shown only in this answer",
                answer("The token", obj(("id", "label", "token"), id=INTEGER, label=STRING, token=STRING)),
                form(label=STRING),
            )
        },
        "/account/tokens/{token_id}": {"parameters": [_token_param()], "delete": revoke},
        "/account/tokens/{token_id}/revoke": {"parameters": [_token_param()], "post": revoke},
        "/account/tokens/{token_id}/revoke.json": {"parameters": [_token_param()], "post": revoke},
        "/admin/users.json": {
            "get": operation("Every account (admins only)", answer("Accounts", obj(("users",), users=array(user)))),
            "post": operation(
                "Add an account (admins only)",
                answer("Accounts", obj(("users",), users=array(user))),
                form(username=STRING, password=STRING, is_admin=STRING),
            ),
        },
        "/admin/users/{name}": change_user,
        "/admin/users/{name}.json": change_user,
        "/jobs/{job_id}": {**job, "put": edit, "post": edit, **delete},
        "/jobs/{job_id}/status": {**job, **status},
        "/jobs/{job_id}/abort": {**job, **abort},
        "/datasets/{job_id}": {**job, **delete},
        "/datasets/{job_id}.json": {
            **job,
            "get": operation(
                "A dataset: tasks, entries per stage, image dimensions, labels, skipped images",
                answer("The dataset", obj(("id", "status"), id=JOB_ID, status=STATUS)),
            ),
        },  # fmt: skip
        "/datasets/{job_id}/status": {**job, **status},
        "/datasets/{job_id}/abort": {**job, **abort},
        "/datasets/{job_id}/explore.json": {
            **job,
            "get": operation(
                "A page of a database's records, as data URIs",
                answer("The page", obj(("items", "total"), items=array(OBJECT), total=INTEGER, pages=INTEGER)),
                params=[
                    query("db", {"type": "string", "enum": ["train", "val", "test"]}),
                    query("label", INTEGER),
                    query("page", INTEGER),
                    query("size", INTEGER, "1 to 200"),
                ],
            ),
        },  # fmt: skip
        "/datasets/images/classification.json": {"post": create_dataset},
        "/datasets/images/generic.json": {"post": create_dataset},
        "/datasets/generic/create/{extension_id}.json": {
            "parameters": [{"name": "extension_id", "in": "path", "required": True, "schema": STRING}],
            "post": operation(
                "Create a dataset with a data extension (its own fields)",
                answer("Queued", CREATED),
                form(dataset_name=STRING, group_name=STRING),
            ),
        },  # fmt: skip
        "/models/{job_id}": {**job, **delete},
        "/models/{job_id}.json": {
            **job,
            "get": operation(
                "A model: status, snapshots (epochs), metrics, hardware in use, the log's last lines",
                answer(
                    "The model",
                    obj(
                        ("id", "status", "snapshots"),
                        id=JOB_ID,
                        status=STATUS,
                        snapshots=array({"type": "number"}),
                        metrics=array(OBJECT),
                        error={"type": "object", "nullable": True},
                    ),
                ),
            ),
        },  # fmt: skip
        "/models/{job_id}/status": {**job, **status},
        "/models/{job_id}/abort": {**job, **abort},
        "/models/{job_id}/resume": {
            **job,
            "post": operation(
                "Continue an aborted or failed model from its last snapshot", answer("Queued", obj(("id", "status")))
            ),
        },  # fmt: skip
        "/models/{job_id}/make_pretrained.json": {
            **job,
            "post": operation(
                "Make a pretrained model of a snapshot",
                answer("Made", CREATED),
                form(name=STRING, snapshot_epoch=STRING),
            ),
        },  # fmt: skip
        "/models/images/classification.json": {"post": create_model},
        "/models/images/generic.json": {"post": create_model},
        "/models/images/classification/classify_one.json": {"post": infer_one},
        "/models/images/classification/classify_many.json": {"post": infer_many},
        "/models/images/classification/top_n.json": {"post": top_n},
        "/models/images/generic/infer_one.json": {"post": infer_one},
        "/models/images/generic/infer_many.json": {"post": infer_many},
        "/models/images/generic/infer_db.json": {"post": infer_db},
        "/models/images/generic/infer_extension.json": {"post": infer_extension},
        "/models/compare.json": {
            "get": operation(
                "The selected models' curves",
                answer("Curves", obj(("models", "metrics"))),
                params=[query("job_id", JOB_ID, many=True)],
            ),
        },  # fmt: skip
        "/models/visualize-lr.json": {
            "get": operation(
                "The learning rate over training for these solver fields",
                answer("The curve", obj(epochs=array({"type": "number"}), lr=array({"type": "number"}))),
                params=[query("learning_rate", STRING), query("train_epochs", STRING), query("lr_policy", STRING)],
            )
        },
        "/models/visualize-network.json": {
            "post": operation(
                "Build custom_network for a dataset's images (or input_shape H,W,C): its layers",
                answer("The layers", obj(layers=array(OBJECT), total_params=INTEGER)),
                form(custom_network=STRING, dataset=STRING, input_shape=STRING, nclasses=STRING, crop_size=STRING),
                **{"503": {"$ref": "#/components/responses/Busy"}},
            )
        },
        "/inference/{job_id}.json": {
            **job,
            "get": operation(
                "A background inference: status, progress, then its results",
                answer("The inference", obj(("status",), status=STATUS)),
            ),
        },  # fmt: skip
        "/pretrained_models/{job_id}": {**job, **delete},
        "/pretrained_models/{job_id}.json": {**job, "get": operation("A pretrained model", answer("It"))},
        "/pretrained_models/upload.json": {
            "post": operation("Upload a pretrained model's files", answer("Made", CREATED), pretrained_files)
        },
        "/pretrained_models/upload_archive.json": {
            "post": operation(
                "Upload a model archive (a DIGITS download)",
                answer("Made", CREATED),
                form(files=("archive",), job_name=STRING),
            )
        },
        "/tensorboard.json": {
            "post": operation(
                "Start (or find) TensorBoard on these models",
                answer("Where it is", obj(("key", "url"), key=STRING, url=STRING, runs=array(STRING))),
                form(job_id=array(JOB_ID)),
                **{"503": {"$ref": "#/components/responses/Busy"}},
            )
        },
    }


def _token_param() -> Schema:
    return {"name": "token_id", "in": "path", "required": True, "schema": INTEGER}


def _error(description: str) -> Schema:
    return answer(description, ERRORS)


DOCUMENT: Schema = {
    "openapi": "3.0.3",
    "info": {
        "title": "DIGITS",
        "version": __version__,
        "description": "Every page has a JSON twin; routes and form fields follow DIGITS 6. Errors answer "
        '{"errors": message or {field: [messages]}}. Live updates: Socket.IO, join the room "home" or a job id.',
    },
    "paths": _paths(),
    "components": {
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "session", "description": "POST /login"},
            "token": {"type": "http", "scheme": "bearer", "description": "An API token from the account page"},
        },
        "responses": {
            "BadRequest": _error("The request is not valid: what to change"),
            "LoginNeeded": _error("Log in first, or send a valid token"),
            "Forbidden": _error("Not yours to change, or admins only"),
            "NotFound": _error("No such job, task or route"),
            "Busy": _error("Busy: retry later"),
        },
    },
    "security": [{"session": []}, {"token": []}],
}


@blueprint.route("/api/openapi.json")
def openapi():
    """The document, with the server's URL prefix (``DIGITS_URL_PREFIX``) as its server."""
    return {**DOCUMENT, "servers": [{"url": request.script_root or "/"}]}
