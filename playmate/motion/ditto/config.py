"""Ditto's configuration pickle (``ditto_cfg/v0.4_hubert_cfg_pytorch.pkl``), read safely.

The release's cfg is a plain pickle of ``{"base_cfg": {...}, "audio2motion_cfg": {...},
"default_kwargs": {...}}`` holding only dicts, lists, tuples, strings, numbers and numpy arrays.
It is read with :class:`playmate.motion.safeload.NumpyUnpickler` (the project's one allow-listed
unpickler: numpy arrays / dtypes / scalars, protocol-2 byte strings and nothing that can run
code); a refused global raises :class:`ModelFileError` naming the file and the global.

Of the file we use the ``audio2motion_cfg`` sizes (cross-checked against the checkpoint's
tensors, see :mod:`.checkpoint`) and ``default_kwargs``, the keyword defaults of the release's
``StreamSDK.setup``.  :data:`CODE_DEFAULTS` are that function's own defaults; the file's values
are merged over them (the file wins), exactly as ``StreamSDK.setup`` does.  Paths and devices
in the file are ignored.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InputError, ModelFileError
from ..safeload import load_numpy_pickle
from .emotion import release_rows

CFG_NAME = "v0.4_hubert_cfg_pytorch.pkl"

# StreamSDK.setup's kwargs.get(...) defaults (stream_pipeline_offline.py); the cfg may override them.
CODE_DEFAULTS = {
    "max_size": 1920, "template_n_frames": -1, "crop_scale": 2.3, "crop_vx_ratio": 0, "crop_vy_ratio": -0.125,
    "crop_flag_do_rot": True, "smo_k_s": 13,
    "emo": 4, "eye_f0_mode": False, "ch_info": None,
    "overlap_v2": 10, "fix_kp_cond": 0, "fix_kp_cond_dim": None, "sampling_timesteps": 50, "online_mode": False,
    "v_min_max_for_clip": None, "smo_k_d": 3,
    "N_d": -1, "use_d_keys": None, "relative_d": True, "drive_eye": None, "delta_eye_arr": None,
    "delta_eye_open_n": 0, "fade_type": "", "fade_out_keys": ("exp",), "flag_stitching": True,
    "ctrl_info": {}, "overall_ctrl_info": {},
}

SIZE_KEYS = ("motion_feat_dim", "audio_feat_dim", "seq_frames")
FLAG_KEYS = ("use_emo", "use_sc", "use_eye_open", "use_eye_ball")


@dataclass(frozen=True)
class DittoConfig:
    """The parts of the cfg pickle the motion generator uses."""
    sizes: dict                       # audio2motion_cfg sizes present in the file (motion_feat_dim, ...)
    flags: dict                       # use_emo / use_sc / use_eye_open / use_eye_ball (True when absent)
    w2f_type: str = "hubert"
    default_kwargs: dict = field(default_factory=lambda: dict(CODE_DEFAULTS))
    origin: str = ""

    def merged(self, overrides=None):
        """``default_kwargs`` with ``overrides`` merged over them (StreamSDK.setup: the caller wins)."""
        out = dict(self.default_kwargs)
        out.update(overrides or {})
        return out


def default_config():
    """The release code's defaults, without a cfg file (for tests and synthetic models)."""
    return DittoConfig(sizes={}, flags={k: True for k in FLAG_KEYS})


def read_config(path):
    """Read and check the cfg pickle at ``path`` -> :class:`DittoConfig` (ModelFileError if unusable)."""
    path = Path(path)
    cfg = load_numpy_pickle(path, what="Ditto config pickle")
    where = "The Ditto config '%s'" % path
    if not isinstance(cfg, dict) or not isinstance(cfg.get("audio2motion_cfg"), dict):
        raise ModelFileError("%s is not Ditto's cfg (a dict with 'audio2motion_cfg' and 'default_kwargs'): "
                             "use ditto_cfg/%s from the release." % (where, CFG_NAME))
    a2m = cfg["audio2motion_cfg"]
    sizes = {}
    for key in SIZE_KEYS:
        if key in a2m:
            value = a2m[key]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) <= 0:
                raise ModelFileError("%s: audio2motion_cfg['%s'] must be a positive integer, got %r."
                                     % (where, key, value))
            sizes[key] = int(value)
    flags = {k: bool(a2m.get(k, True)) for k in FLAG_KEYS}
    if not all(flags.values()):
        off = [k for k, v in flags.items() if not v]
        raise ModelFileError("%s turns off %s: only the released layout (audio, emotion, eye and source-keypoint "
                             "conditions) is supported." % (where, ", ".join(off)))
    w2f = str(a2m.get("w2f_type", "hubert")).lower()
    if w2f != "hubert":
        raise ModelFileError("%s uses audio features %r; only 'hubert' (the release) is supported." % (where, w2f))
    given = cfg.get("default_kwargs", {})
    if not isinstance(given, dict):
        raise ModelFileError("%s: default_kwargs must be a dict, got %s." % (where, type(given).__name__))
    merged = dict(CODE_DEFAULTS)
    merged.update(given)
    check_kwargs(merged, where)
    return DittoConfig(sizes=sizes, flags=flags, w2f_type=w2f, default_kwargs=merged, origin=str(path))


def _int(value, lo=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    value = int(value)
    return value if lo is None or value >= lo else None


def check_kwargs(kw, where, error=ModelFileError):
    """Validate the setup kwargs the motion generator reads; ``error`` names ``where`` and the key."""
    def bad(key, need):
        raise error("%s: %s = %r, expected %s." % (where, key, kw[key] if not isinstance(kw[key], np.ndarray)
                                                   else "array%s" % (kw[key].shape,), need))

    for key, lo in (("sampling_timesteps", 1), ("overlap_v2", 0), ("fix_kp_cond", 0), ("smo_k_d", 0)):
        if _int(kw[key], lo) is None:
            bad(key, "an integer >= %d" % lo)
    dims = kw["fix_kp_cond_dim"]
    if dims is not None and (not isinstance(dims, (list, tuple, np.ndarray)) or len(dims) != 2
                             or any(_int(d, 0) is None for d in dims) or int(dims[0]) > int(dims[1])):
        bad("fix_kp_cond_dim", "None or [start, end] with 0 <= start <= end")
    for key, cols in (("v_min_max_for_clip", None), ("delta_eye_arr", 63)):
        arr = kw[key]
        if arr is None:
            continue
        if not isinstance(arr, np.ndarray) or arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number) \
                or not np.isfinite(arr).all() or (cols is not None and arr.shape[1] != cols) \
                or (key == "v_min_max_for_clip" and arr.shape[0] < 2) or arr.shape[0] < 1:
            bad(key, "None or a finite numeric array (%s)" % ("[>=2, motion dim]" if cols is None else "[n, 63]"))
    open_n = kw["delta_eye_open_n"]
    if _int(open_n, -1) is None and not (isinstance(open_n, (list, tuple)) and open_n
                                         and all(_int(n, 1) is not None for n in open_n)):
        bad("delta_eye_open_n", "-1 (no blinks), 0 (seeded random gaps of 60..100 frames), a gap > 0 "
                                "or a list of gaps > 0")
    for key in ("overall_ctrl_info",):
        if not isinstance(kw[key], dict):
            bad(key, "a dict")
    if not isinstance(kw["ctrl_info"], (dict, list, tuple)):
        bad("ctrl_info", "a dict {frame: controls} or a list of per-frame dicts")
    try:
        release_rows(kw["emo"], "%s: emo" % where)
    except InputError as exc:
        raise error(str(exc)) from None
    use = kw["use_d_keys"]
    if use is not None and not isinstance(use, (dict, list, tuple)):
        bad("use_d_keys", "None, a list of motion keys or a dict key -> weight")
    for key in ("relative_d",):
        if not isinstance(kw[key], (bool, np.bool_)):
            bad(key, "True or False")
    if kw["drive_eye"] is not None and not isinstance(kw["drive_eye"], (bool, np.bool_)):
        bad("drive_eye", "None, True or False")
    return kw
