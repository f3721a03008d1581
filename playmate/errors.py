"""Errors that reach the user.

Every error the user can fix is a :class:`PlaymateError` whose message names the
input (file, image, frame, parameter) and says what to do.  The CLI prints the
message as one line; ComfyUI shows it in the node's error box.

ComfyUI titles that box with the exception's type as ``module.qualname`` unless the
module is ``builtins`` (``execution.full_type_name``); inside ComfyUI our module is
``playmate.errors`` under a folder-path-named package, so the title would be a code
path.  The classes therefore report ``builtins`` as their module, as Python's own
exceptions do: the dialog (and a traceback's last line) reads ``InputError: <message>``.
They stay importable from here, and pickling goes through :func:`_rebuild`.
"""


def _rebuild(name, args):
    """Unpickle a Playmate error by its class name (the classes do not live in ``builtins``)."""
    return _CLASSES[name](*args)


class PlaymateError(Exception):
    """A problem with the user's input, files or parameters (not a bug)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__module__ = "builtins"
        _CLASSES[cls.__qualname__] = cls

    def __reduce__(self):
        return _rebuild, (type(self).__qualname__, self.args)


_CLASSES = {"PlaymateError": PlaymateError}
PlaymateError.__module__ = "builtins"


class ModelFileError(PlaymateError):
    """A model file is missing, truncated, of the wrong network or unsafe."""


class InputError(PlaymateError):
    """An image, audio clip, motion or parameter cannot be used as given."""
