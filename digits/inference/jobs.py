"""Background inference jobs: Classify Many or Top N over a long list or a dataset's database.

Such a job runs ``digits.tools.batch_inference`` (either framework's models) as its one task and keeps
``spec.json``, the list and ``results.json`` in its directory, so its results stay readable after the model is
gone. It names its model in ``form["model"]`` rather than depending on it: deleting the model deletes its
inference jobs too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lmdb

from digits.datasets import generic as generic_datasets
from digits.inference.results import shape_results
from digits.inference.spec import ModelSpec, SpecError
from digits.jobs import Job, JobStore, Task, new_job_id
from digits.jobs.store import write_json_atomic
from digits.utils.constants import STAGES

TOOL = "digits.tools.batch_inference"
TITLES = {"classify_many": "Classify Many", "top_n": "Top N", "infer_many": "Infer Many", "infer_db": "Infer DB",
          "infer_extension": "Infer"}  # fmt: skip
DB_TOOL = "digits.tools.create_generic_db"
STAGE_NAMES = {"train": "training", "val": "validation", "test": "test"}


def create(
    store: JobStore,
    model: Job,
    spec: ModelSpec,
    mode: str,
    username: str,
    *,
    top_n: int = 9,
    paths: list[str] | None = None,
    labels: list | None = None,
    problems: list | None = None,
    db: str | None = None,
    limit: int | None = None,
    extension: tuple | None = None,
) -> Job:
    """Make (but do not submit) the job classifying ``paths``, the first ``limit`` records (all: None) of the
    model dataset's ``db`` stage, or what the data ``extension`` (``(id, its inference form)``) makes: then a
    first task builds that database. Raises SpecError naming the stages the dataset has when it lacks ``db``."""
    args = ["--spec", "spec.json", "--out", "results.json"]
    dataset = store.get(model.form.get("dataset", ""))
    count = None
    if mode == "top_n":
        args += ["--top", str(len(spec.labels))]  # each image's score for every class, to rank it in each
    if mode.startswith("infer_"):
        args.append("--inputs")  # the page shows outputs through a view extension, which draws on the inputs
    tasks = []
    if extension:
        extension_id, extension_form = extension
        args += ["--db", "test_db"]
        source = f"{extension_id} inference data"
        tasks.append(Task(id="create_db", name="Create inference DB", tool=DB_TOOL, args=[
            "--extension", extension_id, "--form", generic_datasets.FORM_FILE, "--inference", "--out", ".",
            "--userdata", str(Path(dataset.directory) / generic_datasets.USERDATA_FILE),
        ]))  # fmt: skip
    elif db:
        have = dataset_stages(dataset)
        if db not in have:
            raise SpecError(missing_stage(dataset, db, have))
        db_dir = Path(dataset.directory) / f"{db}_db"
        with lmdb.open(str(db_dir), readonly=True, lock=False, subdir=True) as env:
            count = env.stat()["entries"]
        count = min(count, limit) if limit else count
        args += ["--db", str(db_dir)] + (["--limit", str(limit)] if limit else [])
        source = f"{dataset.name}: {db} database"
    else:
        args += ["--list", "list.json"]
        count = len(paths or [])
        source = f"{count} listed images"
    job_id = new_job_id()
    with store.staging(job_id) as staging:
        write_json_atomic(staging / "spec.json", spec.to_dict())
        if extension:
            fields = generic_datasets.extension_form_data(extension[1], staging)
            write_json_atomic(staging / generic_datasets.FORM_FILE, fields)
        elif not db:
            write_json_atomic(staging / "list.json", {"paths": paths, "labels": labels, "problems": problems or []})
        job = Job(
            id=job_id, type="inference", kind=mode, name=f"{TITLES[mode]} with {model.name} ({source})",
            username=username, directory=str(staging),
            tasks=[*tasks, Task(id="infer", name=TITLES[mode], tool=TOOL, args=args,
                                depends_on=[t.id for t in tasks])],
            form={"model": model.id, "mode": mode, "top_n": top_n, "db": db or "", "count": count,
                  "dataset": dataset.id if dataset else "", "snapshot_epoch": spec.snapshot_epoch},
        )  # fmt: skip
        store.add(job, staging)
    return job


def dataset_stages(dataset: Job | None) -> list[str]:
    """The stages (``train``, ``val``, ``test``) whose database the dataset has built."""
    if dataset is None:
        return []
    return [stage for stage in STAGES if (Path(dataset.directory) / f"{stage}_db" / "data.mdb").is_file()]


def missing_stage(dataset: Job | None, stage: str, have: list[str]) -> str:
    """Why a model cannot be tested on its dataset's ``stage``, and what it can be tested on."""
    if dataset is None:
        return "the model's dataset has been deleted: classify a list of images instead"
    word = STAGE_NAMES.get(stage, stage)
    others = ", ".join(STAGE_NAMES[s] for s in have if s != "train")
    offer = f"Its databases to test on: {others}." if others else "Classify a list of images instead."
    return f"the dataset {dataset.name} has no {word} database (it was created without {word} images). {offer}"


def of_model(store: JobStore, model: Job) -> list[Job]:
    return store.all(lambda j: j.type == "inference" and j.form.get("model") == model.id)


def stored_results(job: Job) -> tuple[ModelSpec, dict]:
    """The spec the job ran and what the tool wrote once done: ``{"results": [...], "labels": [...]}``."""
    spec = ModelSpec.from_dict(json.loads((Path(job.directory) / "spec.json").read_text()))
    return spec, json.loads((Path(job.directory) / "results.json").read_text())


def describe(job: Job) -> dict[str, Any]:
    """The job's status and progress, and once done, the answer the synchronous route would have given."""
    task = job.tasks[-1]
    data: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "progress": job.progress,
        "eta": task.eta,
        "error": job.error,
        "model": job.form.get("model"),
        "mode": job.form.get("mode"),
        # What the page says from the first second: how many images, what the tool is doing with them.
        "count": job.form.get("count"),
        "done": task.data.get("progress", {}).get("done", 0),
        "doing": task.data.get("progress", {}).get("doing"),
        "dataset": job.form.get("dataset") or None,
        "db": job.form.get("db") or None,
    }
    directory = Path(job.directory)
    if (directory / "results.json").is_file():
        spec, stored = stored_results(job)
        listed = directory / "list.json"
        problems = json.loads(listed.read_text()).get("problems", []) if listed.is_file() else []
        labels = stored["labels"] or [None] * len(stored["results"])
        data.update(
            shape_results(job.form["mode"], stored["results"], labels, spec.labels, problems, job.form["top_n"])
        )
    return data
