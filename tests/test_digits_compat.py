"""What was written for DIGITS works here unchanged: its plugins' imports, its clients' inference requests,
its page URLs (issue 17)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers import logged_in_client, wait_done
from plugin_packages import install, uninstall

# -- a plugin written the DIGITS way: flask.ext.wtf and digits.utils.forms ---------------------------------
SNIPPETS_DIST = "digits_snippets_test_plugin"
SNIPPETS_ID = "snippets-as-codes"

SNIPPETS_PLUGIN = {
    "setup.py": f"""
        from setuptools import setup
        from digits.extensions.data import GROUP as DIGITS_PLUGIN_GROUP

        setup(
            name="{SNIPPETS_DIST}",
            version="0.1",
            packages=["digitsDataPluginSnippets"],
            entry_points={{DIGITS_PLUGIN_GROUP: ["class=digitsDataPluginSnippets:DataIngestion"]}},
            include_package_data=True,
        )
        """,
    "MANIFEST.in": "recursive-include digitsDataPluginSnippets *.html\n",
    "digitsDataPluginSnippets/__init__.py": "from .data import DataIngestion  # noqa: F401\n",
    "digitsDataPluginSnippets/forms.py": """
        from digits import utils
        from digits.utils import subclass
        from digits.utils.forms import validate_required_iff
        from flask.ext.wtf import Form
        from wtforms import validators


        @subclass
        class DatasetForm(Form):
            train_snippets = utils.forms.TextAreaField(
                u'Training snippets',
                validators=[validators.DataRequired()],
                tooltip="One sample per line: the class number, then the text",
            )
            has_val = utils.forms.BooleanField(u'Validation snippets', default=False)
            val_snippets = utils.forms.TextAreaField(
                u'Validation snippets',
                validators=[validate_required_iff(has_val=True)],
                tooltip="As the training snippets",
            )
            length = utils.forms.IntegerField(
                u'Characters per sample', default=8,
                validators=[validators.NumberRange(min=1, max=64)],
                tooltip="Shorter samples are padded, longer ones cut",
            )
            alphabet = utils.forms.TextField(u'Dictionary', default="abcdefghijklmnopqrstuvwxyz ",
                                             tooltip="Characters and their codes (1-based)")
        """,
    "digitsDataPluginSnippets/data.py": """
        import os

        import numpy as np

        from digits.extensions.data.interface import DataIngestionInterface
        from digits.utils import constants, override, subclass

        from .forms import DatasetForm

        TEMPLATE = "templates/dataset_template.html"


        @subclass
        class DataIngestion(DataIngestionInterface):
            @override
            def encode_entry(self, entry):
                label, text = entry.split(" ", 1)
                codes = [self.alphabet.find(c) + 1 for c in text.lower()][: self.length]
                codes += [0] * (self.length - len(codes))
                return np.array(codes, dtype=np.uint8).reshape(1, 1, self.length), int(label)

            @staticmethod
            @override
            def get_category():
                return "Text"

            @staticmethod
            @override
            def get_id():
                return "snippets-as-codes"

            @staticmethod
            @override
            def get_dataset_form():
                return DatasetForm()

            @staticmethod
            @override
            def get_dataset_template(form):
                extension_dir = os.path.dirname(os.path.abspath(__file__))
                template = open(os.path.join(extension_dir, TEMPLATE), "r").read()
                return (template, {"form": form})

            @staticmethod
            @override
            def get_title():
                return "Snippets"

            @override
            def itemize_entries(self, stage):
                field = {constants.TRAIN_DB: "train_snippets", constants.VAL_DB: "val_snippets"}.get(stage)
                if field is None or (stage == constants.VAL_DB and not self.has_val):
                    return []
                return [line.strip() for line in getattr(self, field).splitlines() if line.strip()]
        """,
    "digitsDataPluginSnippets/templates/dataset_template.html": """
        {% from "helper.html" import print_flashes, mark_errors %}
        {{ print_flashes() }}
        {% for field in [form.train_snippets, form.has_val, form.val_snippets, form.length, form.alphabet] %}
        <div class="form-group{{ mark_errors([field]) }}">
            {{ field.label }}
            {{ field.tooltip }}
            {{ field(class='form-control') }}
        </div>
        {% endfor %}
        """,
}


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture
def snippets_plugin(tmp_path):
    install(write_package(tmp_path / "src" / "snippets", SNIPPETS_PLUGIN), tmp_path)
    try:
        yield
    finally:
        uninstall(SNIPPETS_DIST)


def test_plugin_written_with_flask_ext_wtf_builds_a_dataset(snippets_plugin, make_app):
    app = make_app()
    client = logged_in_client(app)
    extensions = client.get("/extensions.json").get_json()["data"]
    assert not [b for b in extensions["broken"] if "Snippets" in b["name"]], extensions["broken"]
    mine = next(e for e in extensions["extensions"] if e["id"] == SNIPPETS_ID)
    assert mine["title"] == "Snippets" and mine["category"] == "Text"

    page = client.get(f"/datasets/generic/new/{SNIPPETS_ID}").get_data(as_text=True)
    assert 'name="train_snippets"' in page and "<textarea" in page
    assert "One sample per line: the class number, then the text" in page  # the tooltip, rendered

    url = f"/datasets/generic/create/{SNIPPETS_ID}.json"
    refused = client.post(url, data={"dataset_name": "s", "train_snippets": "0 abc", "has_val": "y"})
    assert refused.status_code == 400 and "val_snippets" in refused.get_json()["errors"]

    train = "\n".join(f"{i % 2} {'hello there' if i % 2 else 'good bye'} {i}" for i in range(12))
    answer = client.post(url, data={"dataset_name": "snippets", "train_snippets": train, "has_val": "y",
                                    "val_snippets": "0 good\n1 hello", "length": "6"})  # fmt: skip
    assert answer.status_code == 200, answer.get_json()
    dataset = answer.get_json()["id"]
    wait_done(client, dataset)
    shown = client.get(f"/datasets/{dataset}.json").get_json()
    assert shown["entries"] == {"train": 12, "val": 2}
    assert shown["feature_dims"] == [1, 6, 1], shown["feature_dims"]
