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


# -- inference requests as DIGITS' clients send them -------------------------------------------------------
class ImageServer:
    """A tiny HTTP server on loopback answering ``routes``: path -> (status, headers, body)."""

    def __init__(self, routes: dict[str, tuple[int, dict, bytes]]):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                status, headers, body = routes.get(self.path, (404, {}, b"no such thing"))
                if callable(body):
                    body(self)
                    return
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    if value is not None:
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def png_bytes(path: Path) -> bytes:
    return path.read_bytes()


def slow_answer(handler) -> None:
    """Headers at once, then a byte now and then: only the total deadline stops it."""
    import time

    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.end_headers()
    for _ in range(50):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.1)


@pytest.fixture(scope="module")
def images_server(digits_folder):
    seven = sorted((digits_folder / "7").glob("*.png"))[0].read_bytes()
    server = ImageServer({
        "/seven.png": (200, {"Content-Type": "image/png"}, seven),
        "/big.png": (200, {"Content-Type": "image/png"}, b"\0" * (2 << 20)),
        "/big-unsized.png": (200, {"Content-Length": None}, b"\0" * (2 << 20)),
        "/notes.txt": (200, {"Content-Type": "text/plain"}, b"not an image"),
        "/to-ftp": (302, {"Location": "ftp://127.0.0.1/seven.png"}, b""),
        "/to-seven": (302, {"Location": "/seven.png"}, b""),
        "/slow.png": (200, {}, slow_answer),
    })  # fmt: skip
    yield server
    server.close()


def test_fetch_bounds_and_reasons(images_server):
    from digits.inference.fetch import FetchError, fetch, fetch_image, is_url

    url = images_server.url
    body, suffix = fetch_image(f"{url}/to-seven", max_bytes=1 << 20, timeout=5)
    assert suffix == ".png" and body.startswith(b"\x89PNG")
    assert is_url("https://x/y.png") and is_url("file:///etc/passwd") and not is_url("/data/x.png")
    cases = {
        "file:///etc/passwd": "only http and https",
        "ftp://127.0.0.1/x.png": "only http and https",
        f"{url}/to-ftp": "redirected to ftp://",
        f"{url}/missing.png": "answered 404",
        f"{url}/big.png": "over the limit",
        f"{url}/big-unsized.png": "over the limit",
        f"{url}/notes.txt": "not an image",
        "http://127.0.0.1:9/x.png": "cannot reach",
    }
    for bad, reason in cases.items():
        with pytest.raises(FetchError, match=reason):
            fetch_image(bad, max_bytes=1 << 20, timeout=5)
    with pytest.raises(FetchError, match="timed out"):
        fetch(f"{url}/slow.png", max_bytes=1 << 20, timeout=0.5)


@pytest.fixture(scope="module")
def trained(make_module_app, digits_folder, tmp_path_factory):
    """One app with a one-epoch LeNet and a one-epoch auto-encoder (the cheapest generic model), and at most
    1 MiB fetched per URL."""
    from helpers import make_dataset, train_lenet
    from sample_images import write_digits_folder
    from seed_networks import AUTOENCODER

    app = make_module_app(fetch_max_mb=1)
    client = logged_in_client(app)
    lenet = train_lenet(client, make_dataset(client, digits_folder))

    flat = tmp_path_factory.mktemp("flat")
    for path in write_digits_folder(tmp_path_factory.mktemp("small"), per_class=4, size=16).glob("*/*.png"):
        (flat / path.name).write_bytes(path.read_bytes())
    answer = client.post("/datasets/generic/create/image-processing.json", data=dict(
        dataset_name="copies", feature_folder=str(flat), label_folder=str(flat), folder_pct_val="20",
        channel_conversion="L"))  # fmt: skip
    assert answer.status_code == 200, answer.get_json()
    wait_done(client, answer.get_json()["id"])
    network = AUTOENCODER.replace("tf.reshape(_x,", "tf.reshape(model,")
    answer = client.post("/models/images/generic.json", data=dict(
        method="custom", custom_network=network, framework="tensorflow", dataset=answer.get_json()["id"],
        train_epochs="1", model_name="auto-encoder", use_mean="none", batch_size="8", solver_type="ADAM",
        learning_rate="0.001"))  # fmt: skip
    assert answer.status_code == 200, answer.get_json()
    generic = answer.get_json()["id"]
    wait_done(client, generic, timeout=180)
    return app, client, lenet, generic


CLASSIFY = "/models/images/classification"


def test_job_id_in_the_query_string_and_image_url(trained, images_server, digits_folder):
    _, client, lenet, generic = trained
    seven = f"{images_server.url}/seven.png"
    image = sorted((digits_folder / "3").glob("*.png"))[0]

    by_query = client.post(f"{CLASSIFY}/classify_one.json?job_id={lenet}",
                           data={"image_file": (open(image, "rb"), image.name)})  # fmt: skip
    assert by_query.status_code == 200, by_query.get_json()
    assert len(by_query.get_json()["predictions"]) == 5

    for field in ("image_url", "image_path"):
        answer = client.post(f"{CLASSIFY}/classify_one.json?job_id={lenet}", data={field: seven})
        assert answer.status_code == 200, answer.get_json()
        assert len(answer.get_json()["predictions"]) == 5
    in_query = client.post(f"{CLASSIFY}/classify_one.json?job_id={lenet}&image_url={seven}")
    assert in_query.status_code == 200, in_query.get_json()

    listing = f"{seven} 7\n{image} 3\n{images_server.url}/missing.png 1\n".encode()
    import io

    many = client.post(f"{CLASSIFY}/classify_many.json?job_id={lenet}",
                       data={"image_list": (io.BytesIO(listing), "list.txt")})  # fmt: skip
    assert many.status_code == 200, many.get_json()
    data = many.get_json()
    assert set(data["classifications"]) == {seven, str(image)} and data["labels"][seven] == "7"
    assert [e["path"] for e in data["errors"]] == [f"{images_server.url}/missing.png"]
    assert "404" in data["errors"][0]["error"]

    top = client.post(f"{CLASSIFY}/top_n.json?job_id={lenet}&top_n=1",
                      data={"image_list": (io.BytesIO(listing), "list.txt")})  # fmt: skip
    assert top.status_code == 200, top.get_json()
    assert {item["name"] for items in top.get_json()["top_n"].values() for item in items} <= {seven, str(image)}

    infer = client.post(f"/models/images/generic/infer_one.json?job_id={generic}", data={"image_url": seven})
    assert infer.status_code == 200, infer.get_json()
    assert len(infer.get_json()["outputs"]["output"]) == 1


def test_urls_refused_with_the_reason(trained, images_server):
    app, client, lenet, _ = trained
    from digits.web.services import services_of

    url = f"{CLASSIFY}/classify_one.json?job_id={lenet}"
    cases = {
        ("image_url", "file:///etc/passwd"): "only http and https",
        ("image_path", "ftp://127.0.0.1/seven.png"): "only http and https",
        ("image_url", f"{images_server.url}/big.png"): "over the limit",
        ("image_url", f"{images_server.url}/missing.png"): "404",
        ("image_url", f"{images_server.url}/notes.txt"): "not an image",
    }
    for (field, value), reason in cases.items():
        answer = client.post(url, data={field: value})
        assert answer.status_code == 400, (value, answer.get_json())
        assert reason in " ".join(answer.get_json()["errors"][field]), answer.get_json()

    config = services_of(app).config
    config.fetch_urls = False
    try:
        off = client.post(url, data={"image_url": f"{images_server.url}/seven.png"})
    finally:
        config.fetch_urls = True
    assert off.status_code == 400 and "DIGITS_FETCH_URLS=0" in off.get_json()["errors"]["image_url"][0]


# -- DIGITS' page URLs -------------------------------------------------------------------------------------
def test_digits_urls_redirect_to_ours(trained):
    _, client, lenet, generic = trained
    dataset = client.get(f"/models/{lenet}.json").get_json()["dataset"]["id"]
    generic_dataset = client.get(f"/models/{generic}.json").get_json()["dataset"]["id"]
    redirects = {
        f"/datasets/images/classification/explore?job_id={dataset}&db=train&page=1&size=5":
            f"/datasets/{dataset}/explore?",
        f"/datasets/images/generic/explore?job_id={generic_dataset}&db=val_db": f"/datasets/{generic_dataset}/records?",
        f"/datasets/generic/explore?job_id={generic_dataset}&db=train": f"/datasets/{generic_dataset}/records?",
        f"/datasets/summary?job_id={dataset}": f"/datasets/{dataset}",
        f"/datasets/images/classification/summary?job_id={dataset}": f"/datasets/{dataset}",
        f"/datasets/images/generic/summary?job_id={generic_dataset}": f"/datasets/{generic_dataset}",
        f"/datasets/generic/summary?job_id={generic_dataset}": f"/datasets/{generic_dataset}",
        f"/models/images/classification/large_graph?job_id={lenet}": f"/models/{lenet}",
        f"/models/images/generic/large_graph?job_id={generic}": f"/models/{generic}",
        f"/models/timeline_tracing?job_id={lenet}": f"/models/{lenet}",
        "/models/images/generic/new/image-gradients": "/models/images/generic/new",
        "/extension-static/view/image-image-output/x.js": "/extensions/view/image-image-output/static/x.js",
    }  # fmt: skip
    for old, ours in redirects.items():
        answer = client.get(old)
        assert answer.status_code == 302, (old, answer.status_code)
        assert answer.headers["Location"].startswith(ours), (old, answer.headers["Location"])
    explore = client.get(f"/datasets/images/classification/explore?job_id={dataset}&db=train&size=5",
                         follow_redirects=True, headers={"Accept": "application/json"})  # fmt: skip
    assert explore.status_code == 200 and explore.get_json()["db"] == "train" and explore.get_json()["size"] == 5
    assert client.get("/datasets/images/classification/explore?db=train").status_code == 400

    pretrained = client.post(f"/models/{lenet}/to_pretrained")
    assert pretrained.status_code == 307
    assert pretrained.headers["Location"].endswith(f"/models/{lenet}/make_pretrained")
