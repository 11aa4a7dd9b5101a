"""Exception classes.  Every error a user can cause has its own class and a message
that says what to do about it; the CLI turns them into one line and exit status 2."""

from __future__ import annotations

import difflib


class NascoreError(Exception):
    """Base class of every error nascore raises on purpose."""


class ConfigError(NascoreError, ValueError):
    """A run configuration, a component parameter or a CLI option is invalid."""


class UnknownComponentError(ConfigError, LookupError):
    """No component of that kind and name is registered."""


class PluginError(NascoreError):
    """A plugin could not be loaded, or registered something invalid."""


class DuplicateComponentError(PluginError):
    """Two plugins registered a component of the same kind under the same name."""


class ContextReadOnlyError(NascoreError, AttributeError):
    """A component tried to set an attribute of the (read-only) search context."""


class InvalidGenomeError(NascoreError, ValueError):
    """A genome does not belong to its search space."""


class DatasetNotFoundError(NascoreError, FileNotFoundError):
    """A dataset's files are not where the configuration says."""


class RunLockedError(NascoreError):
    """Another process holds the run directory."""


class RunStoreError(NascoreError):
    """A run directory is missing, corrupt or belongs to a different configuration."""


class CandidateTimeoutError(NascoreError, TimeoutError):
    """A candidate exceeded its per-candidate time limit."""


class DivergedError(NascoreError, ArithmeticError):
    """Training produced a NaN or infinite loss."""


class SystematicFailureError(NascoreError):
    """Evaluations keep failing with the same error: the run stops instead of burning its budget."""


class TabularLookupError(NascoreError, LookupError):
    """An architecture is not in the benchmark table a tabular evaluator reads."""


def did_you_mean(word: str, choices) -> str:
    """' did you mean 'x'?' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" did you mean {close[0]!r}?" if close else ""
