"""Extensions: data extensions make datasets, view extensions show what a model outputs.

Both kinds are found the same way (:mod:`digits.extensions.catalog`): the built-in ones shipped in
``digits.extensions.data`` and ``digits.extensions.view``, plus every class that an installed package
declares under the entry point groups ``digits.plugins.data`` and ``digits.plugins.view``. A plugin that
fails to load is listed as broken, with the reason, and never stops the server.

The interfaces, with the docstrings that are the reference for plugin authors, are
:class:`digits.extensions.data.interface.DataIngestionInterface` and
:class:`digits.extensions.view.interface.VisualizationInterface`. :mod:`digits.extensions.web` serves
their templates and static files.
"""
