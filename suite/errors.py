"""User-facing errors: one clear line, non-zero exit, never a bare traceback.

Raise these for anything a user can fix (bad config, missing file, corrupt checkpoint, NaN loss);
`suite.cli` prints `error: <message>` and exits with status 2.
"""


class SuiteError(Exception):
    """An error the user can act on; its message is one line."""


class ConfigError(SuiteError):
    """A config key is unknown, has the wrong type, or an impossible value."""


class MissingFileError(SuiteError):
    """A file the run needs (weights, data, checkpoint) is not there."""


class CheckpointError(SuiteError):
    """A checkpoint cannot be read (truncated, corrupt, wrong format)."""


class DivergenceError(SuiteError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
