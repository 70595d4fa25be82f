"""Failures the CLI reports as one clear message (exit code 1), without a traceback."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of the errors a user can act on from the message alone."""


class ConfigError(PipelineError):
    """params.yaml is missing, unreadable or does not match the schema."""


class StageInputError(PipelineError):
    """A stage's input is missing or unusable."""


class ClusterError(PipelineError):
    """The Dask cluster of `train.engine: dask` cannot be reached or started."""
