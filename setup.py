"""Install DIGITS: ``pip install .`` (or ``-e .`` for development)."""

import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def requirements(name):
    with open(os.path.join(HERE, name)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith(("#", "-r"))]


def asset_files(folder):
    """Every file under a top-level asset folder, relative to it (templates and static are served from the package)."""
    root = os.path.join(HERE, folder)
    return [os.path.relpath(os.path.join(base, name), root) for base, _, names in os.walk(root) for name in names]


setup(
    name="digits",
    version="7.0.0.dev0",
    description="Deep Learning GPU Training System: build image datasets, train TensorFlow models, use them",
    long_description=open(os.path.join(HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    python_requires=">=3.11",
    packages=find_packages(include=["digits", "digits.*"]) + ["digits.templates", "digits.static"],
    # templates/ and static/ live at the top of the source tree and are installed inside the package.
    package_dir={"digits.templates": "templates", "digits.static": "static"},
    package_data={
        "digits": ["standard_networks/*.py"],
        "digits.templates": asset_files("templates"),
        "digits.static": asset_files("static"),
    },
    install_requires=requirements("requirements.txt"),
    entry_points={"console_scripts": ["digits-server = digits.cli:main"]},
)
