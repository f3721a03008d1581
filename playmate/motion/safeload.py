"""Reading pickled model files without ever running code from them.

Two pickle dialects occur in released motion-generator checkpoints:

* ``torch.save`` files (a zip holding a pickle): read with
  ``torch.load(weights_only=True)``, which only rebuilds tensors, plain
  containers and the few extra globals the caller allow-lists *for this one
  call* (``torch.serialization.safe_globals`` context, never a global
  registration).  Path objects are always rebuilt as *pure* paths, so a file
  written on Linux (``pathlib.PosixPath``) loads on Windows too.
* plain pickles of numpy arrays (``pickle.dump`` of a dict of arrays, as
  written by numpy 1.x or 2.x): read with :class:`NumpyUnpickler`, whose
  ``find_class`` admits only numpy's array / dtype / scalar reconstruction
  and ``collections.OrderedDict``.

Anything else in the file (``os.system``, ``builtins.eval``, a custom class)
makes loading fail *before* it is called, with a :class:`ModelFileError`
naming the file.
"""

import argparse
import collections
import io
import pickle
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import torch

from ..errors import ModelFileError

# Names under which pickles refer to path classes (Python <= 3.12: pathlib.X,
# Python 3.13+: pathlib._local.X), each mapped to the matching pure path.
PATH_GLOBALS = [
    (PurePosixPath, "pathlib.PosixPath"),
    (PurePosixPath, "pathlib.PurePosixPath"),
    (PurePosixPath, "pathlib._local.PosixPath"),
    (PurePosixPath, "pathlib._local.PurePosixPath"),
    (PureWindowsPath, "pathlib.WindowsPath"),
    (PureWindowsPath, "pathlib.PureWindowsPath"),
    (PureWindowsPath, "pathlib._local.WindowsPath"),
    (PureWindowsPath, "pathlib._local.PureWindowsPath"),
]

# The globals of a training-script checkpoint: its argparse arguments plus paths.
TRAINING_ARGS_GLOBALS = [argparse.Namespace] + PATH_GLOBALS


def _refused(path, what, exc):
    first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    return ModelFileError(
        "Refusing to load the %s '%s': it holds Python objects other than tensors, numbers, "
        "strings and plain containers, and unpickling them could run code (%s). Use the "
        "original file from its official source." % (what, path, first[:300]))


def load_torch_pickle(path, *, allow=(), what="checkpoint"):
    """``torch.load(path, map_location="cpu", weights_only=True)`` with ``allow`` allow-listed.

    ``allow``: extra safe globals for this call only (classes, or ``(object,
    "module.Name")`` pairs mapping a pickled name to a replacement).
    Raises :class:`ModelFileError` for refused or unreadable files.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(list(allow)):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refused(path, what, exc) from None
    except FileNotFoundError:
        raise ModelFileError("The %s '%s' does not exist." % (what, path)) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise ModelFileError("The %s '%s' is truncated or not a PyTorch checkpoint (%s): download "
                             "it again." % (what, path, first[:300])) from None


def _numpy_core():
    core = getattr(np, "_core", None)  # numpy >= 2 (numpy 1.x: numpy.core)
    return core if core is not None else np.core


class NumpyUnpickler(pickle.Unpickler):
    """Unpickler admitting only numpy arrays, numpy scalars and plain containers.

    Arrays pickled by numpy 1.x name ``numpy.core.multiarray._reconstruct``,
    numpy 2.x names ``numpy._core.multiarray._reconstruct``; both resolve to the
    running numpy's function (without importing numpy 1's deprecated alias
    module under numpy 2); likewise ``numeric._frombuffer`` (protocol 5).
    ``_codecs.encode`` is what protocol-2 pickles use to carry raw bytes (it
    only turns a str into bytes).
    """

    def find_class(self, module, name):
        core = _numpy_core()
        allowed = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): _latin1_encode,
        }
        for prefix in ("numpy.core", "numpy._core"):
            allowed[(prefix + ".multiarray", "_reconstruct")] = core.multiarray._reconstruct
            allowed[(prefix + ".multiarray", "scalar")] = core.multiarray.scalar
            allowed[(prefix + ".numeric", "_frombuffer")] = core.numeric._frombuffer
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError("global '%s.%s' is forbidden" % (module, name)) from None


def _latin1_encode(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is only allowed for latin1 byte strings")
    return text.encode("latin1")


def load_numpy_pickle(path, *, what="pickle"):
    """Unpickle ``path`` with :class:`NumpyUnpickler`; object arrays are refused too."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError("The %s '%s' does not exist." % (what, path)) from None
    try:
        obj = NumpyUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise _refused(path, what, exc) from None
    except Exception as exc:  # truncated / garbage input raises all sorts of things
        raise ModelFileError("The %s '%s' is truncated or not a pickle (%s: %s): download it again."
                             % (what, path, exc.__class__.__name__, str(exc)[:200])) from None
    _reject_object_arrays(obj, path, what)
    return obj


def _reject_object_arrays(obj, path, what):
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif isinstance(item, np.ndarray) and item.dtype.hasobject:
            raise ModelFileError("Refusing the %s '%s': it holds numpy object arrays, which are not "
                                 "plain numbers." % (what, path))
