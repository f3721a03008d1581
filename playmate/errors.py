"""Errors that reach the user.

Every error the user can fix is a :class:`PlaymateError` whose message names the
input (file, image, frame, parameter) and says what to do.  The CLI prints the
message as one line; ComfyUI shows it in the node's error box.
"""


class PlaymateError(Exception):
    """A problem with the user's input, files or parameters (not a bug)."""


class ModelFileError(PlaymateError):
    """A model file is missing, truncated, of the wrong network or unsafe."""


class InputError(PlaymateError):
    """An image, audio clip, motion or parameter cannot be used as given."""
