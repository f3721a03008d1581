"""The 70-d motion vector and its adaptive normalisation.

Layout of one frame (float32, the generator's data space)::

    [0:63]  exp    21 keypoints x (x, y, z), row-major: index 3k + c
    [63]    scale
    [64:67] t      (x, y, z)
    [67]    pitch  degrees
    [68]    yaw    degrees
    [69]    roll   degrees

Normalisation (Playmate's "adaptive normalisation"):

* expression: global z-score, ``(exp - exp_mean) / exp_std`` (dataset statistics);
* pose (scale, t, angles): per identity, ``(pose - reference) / pose_std`` where the reference is
  the clip's mean pose in training and the source image's pose at inference, and ``pose_std``
  is the dataset's spread of pose around each clip's mean.

The identity condition is ``[x_c (63) | exp (63) | pose (7)]`` of the source frame, each
z-scored with dataset statistics (``kp_*``, ``exp_*``, ``pose_abs_*``).  All statistics
travel in the checkpoint's JSON metadata.
"""

import json
from dataclasses import dataclass, fields

import torch

from ..errors import InputError

EXP_DIM = 63
POSE_DIM = 7
MOTION_DIM = EXP_DIM + POSE_DIM
IDENTITY_DIM = 63 + EXP_DIM + POSE_DIM
POSE_NAMES = ("scale", "tx", "ty", "tz", "pitch", "yaw", "roll")


def motion_vector(exp, scale, t, pitch, yaw, roll):
    """Per-frame fields (exp [N,21,3] or [N,63], scale/pitch/yaw/roll [N] or [N,1], t [N,3]) -> [N,70]."""
    exp = torch.as_tensor(exp, dtype=torch.float32)
    n = exp.shape[0]
    col = lambda x: torch.as_tensor(x, dtype=torch.float32).reshape(n, -1)
    return torch.cat([exp.reshape(n, EXP_DIM), col(scale)[:, :1], col(t)[:, :3],
                      col(pitch)[:, :1], col(yaw)[:, :1], col(roll)[:, :1]], dim=1)


def split_vector(v):
    """[N,70] -> dict of Motion fields (exp [N,21,3], scale/pitch/yaw/roll [N], t [N,3])."""
    return {"exp": v[:, :EXP_DIM].reshape(-1, 21, 3), "scale": v[:, 63], "t": v[:, 64:67],
            "pitch": v[:, 67], "yaw": v[:, 68], "roll": v[:, 69]}


def source_vectors(source, name="source"):
    """LivePortrait kp_info of one image -> (x_c [63], motion [70]).

    Accepts the motion extractor's batch-1 output: kp [1,21,3], exp [1,21,3], t [1,3],
    scale / pitch / yaw / roll [1] or [1,1].  Extra keys are ignored.
    """
    need = ("kp", "exp", "pitch", "yaw", "roll", "t", "scale")
    if not isinstance(source, dict) or any(k not in source for k in need):
        raise InputError("The %s must be a kp_info dict with %s." % (name, ", ".join(need)))
    sizes = {"kp": 63, "exp": 63, "t": 3, "pitch": 1, "yaw": 1, "roll": 1, "scale": 1}
    vals = {}
    for key, size in sizes.items():
        value = torch.as_tensor(source[key]).detach().float().cpu()
        if value.numel() != size:
            raise InputError("The %s's '%s' has shape %s: expected one face (%d values)."
                             % (name, key, tuple(value.shape), size))
        if not torch.isfinite(value).all():
            raise InputError("The %s's '%s' contains NaN or infinite values." % (name, key))
        vals[key] = value.reshape(1, size)
    motion = motion_vector(vals["exp"], vals["scale"], vals["t"], vals["pitch"], vals["yaw"], vals["roll"])
    return vals["kp"][0], motion[0]


def _vec(values, size, what):
    t = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if t.numel() != size:
        raise ValueError("%s has %d values, expected %d" % (what, t.numel(), size))
    return t


@dataclass
class NormStats:
    """Dataset statistics of the motion space (see the module docstring)."""

    exp_mean: torch.Tensor       # [63]
    exp_std: torch.Tensor        # [63]
    pose_std: torch.Tensor       # [7]  spread of pose around each clip's mean
    pose_abs_mean: torch.Tensor  # [7]  absolute pose (identity condition)
    pose_abs_std: torch.Tensor   # [7]
    kp_mean: torch.Tensor        # [63] canonical keypoints x_c (identity condition)
    kp_std: torch.Tensor         # [63]
    source: str = "data"         # "data" or "placeholder" (no data seen: random-init checkpoints)

    SIZES = {"exp_mean": 63, "exp_std": 63, "pose_std": 7, "pose_abs_mean": 7, "pose_abs_std": 7,
             "kp_mean": 63, "kp_std": 63}

    def __post_init__(self):
        for key, size in self.SIZES.items():
            setattr(self, key, _vec(getattr(self, key), size, key))
        for key in ("exp_std", "pose_std", "pose_abs_std", "kp_std"):
            if not (getattr(self, key) > 0).all():
                raise ValueError("normalisation statistic %s must be positive" % key)

    # ------------------------------------------------------------ mapping
    def normalize(self, motion, ref_pose):
        """Raw motion [..., 70] with reference pose [..., 7] (broadcast) -> normalised [..., 70]."""
        exp = (motion[..., :EXP_DIM] - self.exp_mean.to(motion)) / self.exp_std.to(motion)
        pose = (motion[..., EXP_DIM:] - ref_pose) / self.pose_std.to(motion)
        return torch.cat([exp, pose], dim=-1)

    def denormalize(self, z, ref_pose):
        """Inverse of :meth:`normalize`."""
        exp = z[..., :EXP_DIM] * self.exp_std.to(z) + self.exp_mean.to(z)
        pose = z[..., EXP_DIM:] * self.pose_std.to(z) + ref_pose
        return torch.cat([exp, pose], dim=-1)

    def identity(self, kp, source_motion):
        """x_c [..., 63] and the source frame's raw motion [..., 70] -> identity condition [..., 133]."""
        kp = (kp - self.kp_mean.to(kp)) / self.kp_std.to(kp)
        exp = (source_motion[..., :EXP_DIM] - self.exp_mean.to(kp)) / self.exp_std.to(kp)
        pose = (source_motion[..., EXP_DIM:] - self.pose_abs_mean.to(kp)) / self.pose_abs_std.to(kp)
        return torch.cat([kp, exp, pose], dim=-1)

    def default_source(self):
        """A mean face (x_c [63], motion [70]) used when no source image is given."""
        return self.kp_mean.clone(), torch.cat([self.exp_mean, self.pose_abs_mean])

    # --------------------------------------------------------------- JSON
    def to_dict(self):
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, d):
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})

    def to_json(self):
        return json.dumps(self.to_dict())

    @classmethod
    def placeholder(cls):
        """Plausible LivePortrait-scale statistics for checkpoints that never saw data."""
        return cls(exp_mean=torch.zeros(63), exp_std=torch.full((63,), 0.02),
                   pose_std=torch.tensor([0.02, 0.01, 0.01, 0.01, 4.0, 5.0, 3.0]),
                   pose_abs_mean=torch.tensor([1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
                   pose_abs_std=torch.tensor([0.15, 0.05, 0.05, 0.05, 12.0, 18.0, 8.0]),
                   kp_mean=torch.zeros(63), kp_std=torch.full((63,), 0.3), source="placeholder")


class StatsAccumulator:
    """Streaming (float64) statistics over clips: ``add(motion [n,70], kp [63])``, then ``result()``."""

    def __init__(self):
        self.n_frames = 0
        self.n_clips = 0
        self.sums = {k: torch.zeros(s, dtype=torch.float64) for k, s in
                     (("exp", 63), ("exp2", 63), ("rel2", 7), ("abs", 7), ("abs2", 7), ("kp", 63), ("kp2", 63))}

    def add(self, motion, kp):
        m = torch.as_tensor(motion, dtype=torch.float64)
        k = torch.as_tensor(kp, dtype=torch.float64).reshape(63)
        pose = m[:, EXP_DIM:]
        rel = pose - pose.mean(dim=0)
        s = self.sums
        s["exp"] += m[:, :EXP_DIM].sum(0)
        s["exp2"] += (m[:, :EXP_DIM] ** 2).sum(0)
        s["rel2"] += (rel ** 2).sum(0)
        s["abs"] += pose.sum(0)
        s["abs2"] += (pose ** 2).sum(0)
        s["kp"] += k
        s["kp2"] += k ** 2
        self.n_frames += m.shape[0]
        self.n_clips += 1

    # Lower bounds for the spreads, so a dataset with one identity or a frozen pose stays finite.
    FLOORS = {"exp": 1e-3, "pose": (1e-3, 1e-3, 1e-3, 1e-3, 0.1, 0.1, 0.1),
              "pose_abs": (0.01, 0.005, 0.005, 0.005, 1.0, 1.0, 1.0), "kp": 0.05}

    def result(self):
        if self.n_frames == 0:
            raise InputError("No motion frames to compute normalisation statistics from.")
        s, n, c, f = self.sums, self.n_frames, self.n_clips, self.FLOORS
        floor = lambda x, lo: torch.maximum(x, torch.as_tensor(lo, dtype=x.dtype).expand_as(x))
        std = lambda s1, s2, cnt: (s2 / cnt - (s1 / cnt) ** 2).clamp(min=0).sqrt()
        return NormStats(exp_mean=s["exp"] / n, exp_std=floor(std(s["exp"], s["exp2"], n), f["exp"]),
                         pose_std=floor((s["rel2"] / n).sqrt(), f["pose"]),
                         pose_abs_mean=s["abs"] / n,
                         pose_abs_std=floor(std(s["abs"], s["abs2"], n), f["pose_abs"]),
                         kp_mean=s["kp"] / c, kp_std=floor(std(s["kp"], s["kp2"], c), f["kp"]), source="data")
