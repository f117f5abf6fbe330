"""The image gradients view plugin: ``pip install .`` here, then restart DIGITS."""

import os

from setuptools import find_packages, setup

from digits.extensions.view import GROUP as DIGITS_PLUGIN_GROUP


def read(name):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name)) as f:
        return f.read()


setup(
    name="digits_image_gradients_view_plugin",
    version="1.0.0",
    description="A DIGITS view plugin: a predicted image gradient drawn as an arrow",
    long_description=read("README"),
    license="BSD-3-Clause",
    packages=find_packages(),
    entry_points={DIGITS_PLUGIN_GROUP: ["class=digitsViewPluginImageGradients:Visualization"]},
    include_package_data=True,
    install_requires=["numpy", "Pillow"],
)
