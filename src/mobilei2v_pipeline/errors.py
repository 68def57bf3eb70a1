"""Errors that stop a run on purpose, with a message that tells the user what is wrong and what to do.

They derive from click's exception, so `kedro run` prints "Error: <message>" and exits with status 1
instead of printing a traceback.
"""

import click


class PipelineStopError(click.ClickException):
    """A run stopped by a check on its data, not by a bug."""


class NoUsableClipsError(PipelineStopError):
    """Curation found no clip to keep."""


class ValidationFailedError(PipelineStopError):
    """A Great Expectations suite failed."""


class ParameterError(PipelineStopError):
    """A parameter its schema refuses, found before the run started."""
