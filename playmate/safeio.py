"""Writing files so that nothing half-written is ever left behind, under names that take no existing file."""

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path

from .errors import InputError, ModelFileError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed
    and ``path`` is untouched.  The temporary name keeps the suffix so that
    writers that pick a format from the extension (PyAV, safetensors) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.stem + ".", suffix=".partial" + path.suffix,
                               dir=str(path.parent))
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def next_free_path(folder, prefix, suffix):
    """folder/prefix_00001.suffix with the first free counter (the prefix may hold sub-folders)."""
    folder = Path(folder).resolve()
    base = (folder / prefix).resolve()
    if folder not in base.parents:
        raise InputError("filename_prefix %r points outside the output folder." % prefix)
    base.parent.mkdir(parents=True, exist_ok=True)
    i = 1
    while True:
        path = base.parent / ("%s_%05d%s" % (base.name, i, suffix))
        if not path.exists():
            return path
        i += 1


class ModelConfig:
    """Base of the dataclass configs that model files keep in their metadata: presets ``full``
    (the defaults) and ``tiny`` (the subclass's), and a dict form; ``KIND`` names it in errors."""
    KIND = "config"

    @classmethod
    def full(cls):
        return cls()

    @classmethod
    def preset(cls, name):
        presets = {"full": cls.full, "tiny": cls.tiny}
        if name not in presets:
            raise ValueError("unknown %s %r (choose %s)" % (cls.KIND, name, ", ".join(presets)))
        return presets[name]()

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        """The config from a dict; keys that are not fields (from another version) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def save_model_file(path, model, fmt, version, extra_meta=None, info=None):
    """Write a small trained model with a ``cfg`` (safetensors, float32 weights + JSON metadata), atomically.

    Metadata: ``format``, ``format_version``, ``config`` (``model.cfg.to_dict()``), the string
    values of ``extra_meta``, ``info`` (JSON of ``info``)."""
    from safetensors.torch import save_file
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": fmt, "format_version": str(version), "config": json.dumps(model.cfg.to_dict()),
            **(extra_meta or {}), "info": json.dumps(info or {}, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_model_file(path, fmt, version, name, missing, build, device="cpu"):
    """The model in a file of :func:`save_model_file` (eval mode, no gradients), ``info`` attached.

    ``build(meta)`` makes the model from the metadata; it and ``load_state_dict`` may raise
    KeyError, ValueError, TypeError or RuntimeError for a damaged file.  Every failure is a
    :class:`ModelFileError` naming the file: ``name`` is what the file holds (capitalised, e.g.
    "Lip classifier"), ``missing`` the advice when the file does not exist.
    """
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        raise ModelFileError("%s '%s' does not exist: %s" % (name, path, missing))
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ModelFileError("'%s' is not a readable safetensors file (%s): re-train it." % (path, exc)) from None
    if meta.get("format") != fmt:
        raise ModelFileError("'%s' is not a Playmate %s (metadata format %r)."
                             % (path, name.lower(), meta.get("format")))
    if int(meta.get("format_version", "0")) > version:
        raise ModelFileError("%s '%s' has format version %s; this Playmate reads up to %d: update Playmate."
                             % (name, path, meta.get("format_version"), version))
    try:
        model = build(meta)
        model.load_state_dict(state)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ModelFileError("%s '%s' is damaged or from another version (%s): re-train it."
                             % (name, path, str(exc).splitlines()[0])) from None
    model.info = json.loads(meta.get("info", "{}"))
    return model.to(device).eval().requires_grad_(False)
