"""User-facing errors: one line on stderr, a non-zero exit, no traceback."""


class CharRNNError(Exception):
    """A mistake the user can fix; the message says what and how."""

    exit_code = 1


class DataError(CharRNNError):
    """The training or evaluation text cannot be used."""


class CheckpointError(CharRNNError):
    """A checkpoint is missing, damaged, or does not fit the request."""


class OptionError(CharRNNError):
    """An option or argument has a value it cannot take (the command line's
    usage errors, exit 2)."""

    exit_code = 2
