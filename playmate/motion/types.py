"""MOTION: one typed, serialisable value for a sequence of LivePortrait motion.

Per frame (N frames, float32):
    exp    [N,21,3]  expression offsets (delta)
    pitch  [N]       head pitch, degrees
    yaw    [N]       head yaw, degrees
    roll   [N]       head roll, degrees
    t      [N,3]     translation (t_z is carried but unused by rendering)
    scale  [N]       keypoint scale
plus optional per-frame extras ``extra[name]`` with leading dim N (e.g.
``eye_ratio`` [N,3] or ``lip_ratio`` [N,2] targets for retargeting).

Metadata: ``fps`` (float > 0), ``drive`` -- how the frames combine with a
source face when rendering:
    "absolute": the frames are the driving kp_info itself (source's canonical
                keypoints, these angles/exp/t/scale);
    "relative": LivePortrait's relative transfer -- changes with respect to
                frame 0 are applied on top of the source's own motion.
and free-form JSON-able ``info`` (generator, seed, emotion, source pose ...).

Files: safetensors with the tensors above and the metadata as JSON strings in
the safetensors header (never pickle).  ``FORMAT_VERSION`` guards the layout.
"""

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..errors import InputError
from ..safeio import atomic_path

FORMAT = "playmate-motion"
FORMAT_VERSION = 1
FIELDS = ("exp", "pitch", "yaw", "roll", "t", "scale")
DRIVES = ("absolute", "relative")


def _shape_of(name, n):
    return {"exp": (n, 21, 3), "t": (n, 3)}.get(name, (n,))


@dataclass
class Motion:
    exp: torch.Tensor
    pitch: torch.Tensor
    yaw: torch.Tensor
    roll: torch.Tensor
    t: torch.Tensor
    scale: torch.Tensor
    fps: float = 25.0
    drive: str = "absolute"
    extra: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in FIELDS:
            setattr(self, name, torch.as_tensor(getattr(self, name), dtype=torch.float32).detach().cpu())
        self.extra = {k: torch.as_tensor(v, dtype=torch.float32).detach().cpu() for k, v in self.extra.items()}
        self.validate()

    # ---------------------------------------------------------------- checks
    @property
    def num_frames(self):
        return int(self.exp.shape[0])

    def __len__(self):
        return self.num_frames

    @property
    def duration(self):
        return self.num_frames / self.fps

    def validate(self):
        n = int(self.exp.shape[0]) if self.exp.dim() > 0 else -1
        for name in FIELDS:
            value = getattr(self, name)
            if tuple(value.shape) != _shape_of(name, n):
                raise InputError("MOTION field '%s' has shape %s, expected %s (N=%d frames)."
                                 % (name, tuple(value.shape), _shape_of(name, n), n))
            if not torch.isfinite(value).all():
                raise InputError("MOTION field '%s' contains NaN or infinite values: regenerate or "
                                 "smooth the motion before rendering." % name)
        for name, value in self.extra.items():
            if value.dim() == 0 or value.shape[0] != n:
                raise InputError("MOTION extra '%s' has %s frames, the motion has %d."
                                 % (name, tuple(value.shape[:1]), n))
        if not isinstance(self.fps, (int, float)) or not math.isfinite(self.fps) or self.fps <= 0:
            raise InputError("MOTION fps must be a positive number, got %r." % (self.fps,))
        self.fps = float(self.fps)
        if self.drive not in DRIVES:
            raise InputError("MOTION drive must be one of %s, got %r." % (DRIVES, self.drive))

    # -------------------------------------------------------------- building
    @classmethod
    def still(cls, num_frames, exp, pitch, yaw, roll, t, scale, fps=25.0, **kw):
        """A motion holding one pose for ``num_frames`` frames."""
        n = int(num_frames)
        rep = lambda x, shape: torch.as_tensor(x, dtype=torch.float32).reshape(shape).expand(n, *shape).clone()
        return cls(exp=rep(exp, (21, 3)), pitch=rep(pitch, ()), yaw=rep(yaw, ()), roll=rep(roll, ()),
                   t=rep(t, (3,)), scale=rep(scale, ()), fps=fps, **kw)

    def replace(self, **changes):
        return replace(self, **changes)

    def tensors(self):
        out = {name: getattr(self, name) for name in FIELDS}
        out.update({"extra." + k: v for k, v in self.extra.items()})
        return out

    def slice(self, start, stop):
        return self.replace(**{n: getattr(self, n)[start:stop] for n in FIELDS},
                            extra={k: v[start:stop] for k, v in self.extra.items()})

    def resample(self, fps, num_frames=None):
        """The same motion at another frame rate (linear interpolation in time).

        ``num_frames`` defaults to round(duration * fps); frame i sits at time i / fps.
        """
        fps = float(fps)
        if not math.isfinite(fps) or fps <= 0:
            raise InputError("fps must be a positive number, got %r." % (fps,))
        n_out = int(round(self.duration * fps)) if num_frames is None else int(num_frames)
        if n_out == self.num_frames and fps == self.fps:
            return self
        pos = torch.arange(n_out, dtype=torch.float64) * (self.fps / fps)
        pos = pos.clamp(0, self.num_frames - 1)
        lo = pos.floor().long()
        hi = (lo + 1).clamp(max=self.num_frames - 1)
        w = (pos - lo).float()

        def lerp(x):
            shape = (-1,) + (1,) * (x.dim() - 1)
            return x[lo] * (1 - w).reshape(shape) + x[hi] * w.reshape(shape)

        return self.replace(**{n: lerp(getattr(self, n)) for n in FIELDS}, fps=fps,
                            extra={k: lerp(v) for k, v in self.extra.items()})

    def frame(self, i):
        """kp_info of frame i as a dict of batch-1 tensors (like the motion extractor returns)."""
        return {"exp": self.exp[i:i + 1], "pitch": self.pitch[i:i + 1], "yaw": self.yaw[i:i + 1],
                "roll": self.roll[i:i + 1], "t": self.t[i:i + 1], "scale": self.scale[i:i + 1]}

    # ------------------------------------------------------------------- I/O
    def metadata(self):
        return {"format": FORMAT, "format_version": str(FORMAT_VERSION), "fps": repr(self.fps),
                "drive": self.drive, "info": json.dumps(self.info, sort_keys=True)}

    def save(self, path):
        from safetensors.torch import save_file
        tensors = {k: v.contiguous() for k, v in self.tensors().items()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=self.metadata())
        return Path(path)

    @classmethod
    def load(cls, path):
        from safetensors import safe_open
        path = Path(path)
        if not path.is_file():
            raise InputError("MOTION file '%s' does not exist." % path)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:
            raise InputError("'%s' is not a readable MOTION file (safetensors): %s" % (path, exc)) from None
        if meta.get("format") != FORMAT:
            raise InputError("'%s' is not a Playmate MOTION file (format %r)." % (path, meta.get("format")))
        version = int(meta.get("format_version", "0"))
        if version > FORMAT_VERSION:
            raise InputError("MOTION file '%s' has format version %d, this Playmate reads up to %d: "
                             "update Playmate." % (path, version, FORMAT_VERSION))
        missing = [n for n in FIELDS if n not in tensors]
        if missing:
            raise InputError("MOTION file '%s' lacks the tensors %s." % (path, missing))
        try:
            fps = float(meta.get("fps", "25"))
        except ValueError:
            raise InputError("MOTION file '%s' has an unreadable fps %r." % (path, meta.get("fps"))) from None
        try:
            return cls(**{n: tensors[n] for n in FIELDS}, fps=fps, drive=meta.get("drive", "absolute"),
                       extra={k[6:]: v for k, v in tensors.items() if k.startswith("extra.")},
                       info=json.loads(meta.get("info", "{}")))
        except InputError as exc:  # name the file in the message
            raise InputError("MOTION file '%s': %s" % (path, exc)) from None
