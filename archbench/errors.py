"""The exceptions archbench raises for mistakes made at its API.

Every message is one sentence that names the thing, the expected value and the fix,
so the command line can print it as it is.
"""

from __future__ import annotations


class ArchbenchError(ValueError):
    """Base class: a user mistake that archbench explains in one sentence."""


class UnknownModelError(ArchbenchError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ShapeError(ArchbenchError):
    """An input or layer size that does not fit (too small, wrong channels, wrong features)."""


class OptionTypeError(ArchbenchError, TypeError):
    """An argument of the wrong type (None, a bool or a str where a number belongs), as torch raises TypeError."""


class OutputPathError(ArchbenchError):
    """An output file or folder that cannot be written (missing parent, wrong kind, no permission, in use)."""


class DataFileError(ArchbenchError):
    """A dataset file that is missing, truncated or does not hold what its format promises."""


class TrainingError(ArchbenchError):
    """A training run that cannot go on (a NaN or infinite loss, data that does not fit the network)."""
