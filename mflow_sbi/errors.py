"""Exception hierarchy.

Every error a user can trigger derives from :class:`MflowError`, so the CLI can print one line and exit
non-zero for all of them, while genuine bugs still show a traceback.
"""


class MflowError(Exception):
    """Base class for errors caused by user input or user data."""


class InputError(MflowError, ValueError):
    """An argument, array or file has the wrong shape, type, value or content."""


class ConfigError(InputError):
    """A configuration file or option is invalid."""


class DataFileError(InputError):
    """A data file (npz, ROOT, TOML) is missing, unreadable or lacks a required field."""


class TrainingError(MflowError, RuntimeError):
    """Training cannot continue (e.g. repeated non-finite losses)."""


class IntractableLikelihood(MflowError, NotImplementedError):
    """The simulator has no tractable likelihood for this configuration."""


class MissingDependency(MflowError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""
