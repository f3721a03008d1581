"""JoyVASA's release files: reading them safely, converting them once to safetensors, finding them.

Files (Hugging Face ``jdh-algo/JoyVASA``, MIT):
    motion_generator/motion_generator_hubert_chinese.pt   torch.save pickle {'args', 'model', 'iter'}
    motion_template/motion_template.pkl                   pickle of 45 float32 numpy arrays
Both are read without unpickling code (:mod:`playmate.motion.safeload`) and
converted once into ``motion_generator_hubert_chinese.safetensors`` next to the
``.pt`` (tensors + template, ``args`` as JSON metadata), which later loads use.
"""

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import torch

from ...errors import ModelFileError
from ...hub import Remote, ensure_file
from ...safeio import atomic_path
from ..safeload import TRAINING_ARGS_GLOBALS, load_numpy_pickle, load_torch_pickle

log = logging.getLogger(__name__)

RELEASE_REPO = "jdh-algo/JoyVASA"
GENERATOR_NAME = "motion_generator_hubert_chinese.pt"
TEMPLATE_NAME = "motion_template.pkl"
GENERATOR_REMOTE = Remote(RELEASE_REPO, "motion_generator/" + GENERATOR_NAME)
TEMPLATE_REMOTE = Remote(RELEASE_REPO, "motion_template/" + TEMPLATE_NAME)
CONVERTED_FORMAT = "playmate-joyvasa"
CONVERTED_VERSION = 1
TEMPLATE_KEYS = ("mean_exp", "std_exp") + tuple(
    "%s_%s" % (b, g) for g in ("scale", "t", "pitch", "yaw", "roll") for b in ("max", "min"))
WEIGHT_NORM_LEGACY = {"weight_g": "parametrizations.weight.original0",
                      "weight_v": "parametrizations.weight.original1"}


@dataclass
class JoyVASAFiles:
    """The content of a release (or its conversion): args, state dict, motion template."""
    args: dict
    state: dict     # name -> torch.Tensor (weight-norm keys in the parametrization layout)
    template: dict  # name -> float32 numpy array [n]
    origin: str     # human-readable description of where it came from


def _plain_arg(value):
    if isinstance(value, PurePath):
        return value.as_posix()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_arg(v) for v in value]
    return str(value)


def normalise_state_dict(state, path):
    """Tensors only; old weight-norm names (``conv.weight_g/_v``) -> parametrization names."""
    out = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ModelFileError("'%s' is not a JoyVASA motion generator: its 'model' entry %r is not "
                                 "a tensor." % (path, key))
        prefix, _, leaf = key.rpartition(".")
        if leaf in WEIGHT_NORM_LEGACY and prefix.endswith("pos_conv_embed.conv"):
            key = prefix + "." + WEIGHT_NORM_LEGACY[leaf]
        out[key] = value
    return out


def read_release(generator_path, template_path):
    """Read the two released files safely (no code execution); see module docstring."""
    generator_path, template_path = Path(generator_path), Path(template_path)
    template = read_template(template_path)  # the small file first: a bad one fails fast
    what = "JoyVASA motion generator"
    obj = load_torch_pickle(generator_path, allow=TRAINING_ARGS_GLOBALS, what=what)
    if not isinstance(obj, dict) or "model" not in obj or "args" not in obj:
        raise ModelFileError("'%s' is not a JoyVASA motion generator: expected a checkpoint with "
                             "'args' and 'model' (the file %s from %s)."
                             % (generator_path, GENERATOR_NAME, GENERATOR_REMOTE.url))
    args = obj["args"]
    args = vars(args) if hasattr(args, "__dict__") else args
    if not isinstance(args, dict) or not isinstance(obj["model"], dict):
        raise ModelFileError("'%s' is not a JoyVASA motion generator: 'args' or 'model' has an "
                             "unexpected type." % generator_path)
    args = {str(k): _plain_arg(v) for k, v in args.items()}
    if isinstance(obj.get("iter"), int):
        args.setdefault("_iter", obj["iter"])
    state = normalise_state_dict(obj["model"], generator_path)
    return JoyVASAFiles(args, state, template, "%s + %s" % (generator_path, template_path))


def read_template(path):
    raw = load_numpy_pickle(path, what="JoyVASA motion template")
    if not isinstance(raw, dict):
        raise ModelFileError("'%s' is not a JoyVASA motion template (expected a dict of arrays)." % path)
    template = {}
    for key, value in raw.items():
        arr = np.asarray(value)
        if not isinstance(key, str) or arr.dtype.kind not in "fiu":
            raise ModelFileError("'%s' is not a JoyVASA motion template: entry %r is not numeric."
                                 % (path, key))
        template[key] = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)
    missing = [k for k in TEMPLATE_KEYS if k not in template]
    if missing:
        raise ModelFileError("'%s' is not a JoyVASA motion template: it lacks %s (use %s from %s)."
                             % (path, missing, TEMPLATE_NAME, TEMPLATE_REMOTE.url))
    return template


def _stamp(path):
    st = Path(path).stat()
    return {"name": Path(path).name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_converted(files, path, sources):
    """Write ``files`` as one safetensors file (atomically); ``sources``: {role: original path}."""
    from safetensors.torch import save_file
    tensors = {k: v.detach().cpu().contiguous() for k, v in files.state.items()}
    tensors.update({"template." + k: torch.from_numpy(v.copy()) for k, v in files.template.items()})
    meta = {"format": CONVERTED_FORMAT, "format_version": str(CONVERTED_VERSION),
            "args": json.dumps(files.args, sort_keys=True),
            "sources": json.dumps({role: _stamp(p) for role, p in sources.items()}, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    if "generator" in sources:  # same permissions as the original (the temp file was 0600)
        shutil.copymode(sources["generator"], path)
    return Path(path)


def _converted_metadata(path):
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as exc:
        raise ModelFileError("'%s' is not a readable safetensors file (%s): delete it, it is "
                             "rebuilt from %s." % (path, str(exc)[:200], GENERATOR_NAME)) from None


def read_converted(path):
    from safetensors import safe_open
    path = Path(path)
    meta = _converted_metadata(path)
    if meta.get("format") != CONVERTED_FORMAT:
        raise ModelFileError("'%s' is not a converted JoyVASA generator (format %r)."
                             % (path, meta.get("format")))
    if int(meta.get("format_version", "0")) > CONVERTED_VERSION:
        raise ModelFileError("'%s' was converted by a newer Playmate: update Playmate or delete the "
                             "file (it is rebuilt from %s)." % (path, GENERATOR_NAME))
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ModelFileError("'%s' is damaged (%s): delete it, it is rebuilt from %s."
                             % (path, str(exc)[:200], GENERATOR_NAME)) from None
    template = {k[9:]: tensors.pop(k).numpy() for k in list(tensors) if k.startswith("template.")}
    missing = [k for k in TEMPLATE_KEYS if k not in template]
    if missing:
        raise ModelFileError("'%s' lacks the motion-template entries %s: delete it, it is rebuilt "
                             "from the originals." % (path, missing))
    return JoyVASAFiles(json.loads(meta["args"]), tensors, template, str(path))


def _converted_is_fresh(path, sources):
    try:
        recorded = json.loads(_converted_metadata(path).get("sources", "{}"))
    except (ModelFileError, ValueError):
        return False
    for role, original in sources.items():
        if original is not None and Path(original).is_file():
            stamp = _stamp(original)
            if {k: recorded.get(role, {}).get(k) for k in ("size", "mtime_ns")} != \
                    {"size": stamp["size"], "mtime_ns": stamp["mtime_ns"]}:
                return False
    return True


def _first_existing(candidates):
    return next((c for c in candidates if c.is_file()), None)


def _candidates(path_or_folder):
    """(generator candidates, template candidates) for a folder, the ``.pt`` or the template path."""
    path = Path(path_or_folder).expanduser()
    if path.suffix == ".pkl":  # the template's path: look for the generator around it
        folder = path.parent
        return ([folder / GENERATOR_NAME, folder / "motion_generator" / GENERATOR_NAME,
                 folder.parent / "motion_generator" / GENERATOR_NAME], [path])
    if path.suffix == ".pt" or path.is_file():
        folder = path.parent
        return ([path], [folder / TEMPLATE_NAME, folder / "motion_template" / TEMPLATE_NAME,
                         folder.parent / "motion_template" / TEMPLATE_NAME])
    return ([path / GENERATOR_NAME, path / "motion_generator" / GENERATOR_NAME],
            [path / TEMPLATE_NAME, path / "motion_template" / TEMPLATE_NAME])


def missing_files(path_or_folder):
    """[(path, remote)] of the release files :func:`locate_and_read` would have to download."""
    path = Path(path_or_folder).expanduser()
    if path.suffix == ".safetensors":
        return [] if path.is_file() else [(path, None)]
    generator_candidates, template_candidates = _candidates(path)
    if _first_existing(c.with_suffix(".safetensors") for c in generator_candidates) is not None:
        return []  # a conversion (its freshness is checked when it is read)
    out = []
    if _first_existing(generator_candidates) is None:
        out.append((generator_candidates[0], GENERATOR_REMOTE))
    if _first_existing(template_candidates) is None:
        out.append((template_candidates[0], TEMPLATE_REMOTE))
    return out


def locate_and_read(path_or_folder):
    """Find the release files (folder, HF sub-folder layout, or a file path), download what is
    missing, read them, and convert them once to safetensors.  Returns :class:`JoyVASAFiles`."""
    path = Path(path_or_folder).expanduser()
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ModelFileError("The converted JoyVASA generator '%s' does not exist: pass the folder "
                                 "holding %s and %s instead." % (path, GENERATOR_NAME, TEMPLATE_NAME))
        return read_converted(path)
    generator_candidates, template_candidates = _candidates(path)
    generator = _first_existing(generator_candidates)
    template = _first_existing(template_candidates)
    converted_candidates = [c.with_suffix(".safetensors") for c in generator_candidates]
    converted = _first_existing(converted_candidates)
    if converted is not None and (generator is None or converted.parent == generator.parent) \
            and _converted_is_fresh(converted, {"generator": generator, "template": template}):
        return read_converted(converted)
    if generator is None:
        generator = ensure_file(generator_candidates[0], GENERATOR_REMOTE, "JoyVASA motion generator")
    if template is None:
        template = ensure_file(template_candidates[0], TEMPLATE_REMOTE, "JoyVASA motion template")
    files = read_release(generator, template)
    target = generator.with_suffix(".safetensors")
    try:
        write_converted(files, target, {"generator": generator, "template": template})
        log.info("converted %s to %s", generator, target)
    except Exception as exc:  # read-only folder, disk full ...: the conversion is only a cache
        log.warning("could not write %s (%s); loading from the originals each time", target, exc)
    return files


def looks_like_joyvasa(path):
    """True for a JoyVASA release folder (flat or HF layout), its ``.pt`` / template, or a
    converted ``.safetensors`` (for loaders that dispatch on what a path holds)."""
    path = Path(path)
    if path.is_dir():
        return any((path / sub / name).is_file() for sub in ("", "motion_generator")
                   for name in (GENERATOR_NAME, Path(GENERATOR_NAME).with_suffix(".safetensors").name))
    if path.suffix == ".safetensors" and path.is_file():
        try:
            return _converted_metadata(path).get("format") == CONVERTED_FORMAT
        except ModelFileError:
            return False
    return path.name in (GENERATOR_NAME, TEMPLATE_NAME)
