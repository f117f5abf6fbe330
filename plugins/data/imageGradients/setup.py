"""The image gradients data plugin: ``pip install .`` here, then restart DIGITS."""

import os

from setuptools import find_packages, setup

from digits.extensions.data import GROUP as DIGITS_PLUGIN_GROUP


def read(name):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name)) as f:
        return f.read()


setup(
    name="digits_image_gradients_data_plugin",
    version="1.0.0",
    description="A DIGITS data plugin: synthetic gradient images labelled with their slopes (regression)",
    long_description=read("README"),
    license="BSD-3-Clause",
    packages=find_packages(),
    entry_points={DIGITS_PLUGIN_GROUP: ["class=digitsDataPluginImageGradients:DataIngestion"]},
    include_package_data=True,
    install_requires=["numpy"],
)
