"""Silence: per-frame voice activity from the audio, and the mouth relaxed where it is silent."""

import math

import torch

from ...errors import InputError
from ..compose import LIP_KEYPOINTS
from .common import LIP, done, kp_info, per_frame, require_absolute

# The mouth keypoints relaxed in silence: LivePortrait's lip keypoints (6, 12, 14, 17, 19, 20).
MOUTH_KP = tuple(LIP_KEYPOINTS)


def _mono(waveform):
    """[T], [C,T] or [B,C,T] (first item) -> float32 [T] (channels averaged)."""
    w = torch.as_tensor(waveform).detach().cpu()
    shape = tuple(w.shape)
    if w.dim() == 3:
        w = w[0]
    w = w.float()
    if w.dim() == 2:
        w = w.mean(dim=0)
    if w.dim() != 1 or w.shape[0] == 0:
        raise InputError("audio waveform must be a non-empty [T], [C,T] or [B,C,T], got shape %s." % (shape,))
    if not torch.isfinite(w).all():
        raise InputError("audio waveform contains NaN or infinite samples.")
    return w


AUDIO_CHUNK = 1 << 20     # samples per step when summing energies (bounds memory on long audio)


def frame_levels_db(waveform, sample_rate, num_frames, fps):
    """RMS level in dBFS of each motion frame's audio window [i/fps, (i+1)/fps) -> [N] float64.

    Frames past the end of the audio are silent (-120 dB).  Works chunk by chunk, so an
    hour of audio needs no float64 copy of the whole waveform.
    """
    w = _mono(waveform)
    if not sample_rate or sample_rate <= 0 or not fps or fps <= 0:
        raise InputError("sample_rate and fps must be positive (got %r, %r)." % (sample_rate, fps))
    bounds = torch.round(torch.arange(int(num_frames) + 1, dtype=torch.float64) * (sample_rate / fps)).long()
    width = (bounds[1:] - bounds[:-1]).clamp(min=1).double()
    bounds = bounds.clamp(max=w.shape[0])
    # cumulative energy at every frame boundary, accumulated chunk by chunk
    cum_at = torch.zeros(bounds.shape[0], dtype=torch.float64)
    running = 0.0
    for start in range(0, w.shape[0], AUDIO_CHUNK):
        seg = w[start:start + AUDIO_CHUNK].double()
        cs = torch.cumsum(seg * seg, 0)
        sel = (bounds > start) & (bounds <= start + seg.shape[0])
        cum_at[sel] = running + cs[bounds[sel] - start - 1]
        running += float(cs[-1])
    energy = (cum_at[1:] - cum_at[:-1]).clamp(min=0.0) / width
    return 10.0 * torch.log10(energy + 1e-12)


def voice_activity(waveform, sample_rate, num_frames, fps, threshold_db=-30.0, floor_db=-55.0, hold=0.2,
                   attack=0.08, release=0.25):
    """Per-frame voice activity in [0, 1] aligned to the motion's frames -> float32 [N].

    A frame is voiced when its RMS level is above ``threshold_db`` relative to the clip's
    loud level (95th percentile of its frame levels) and above ``floor_db`` dBFS.  Voiced
    spans are widened by ``hold`` seconds on both sides (bridges pauses between words, opens
    the mouth just before speech), then the 0/1 signal ramps up over ``attack`` and down
    over ``release`` seconds with smoothstep easing.  With attack <= hold every voiced
    frame has activity exactly 1; long silences reach exactly 0.
    """
    for name, value in (("hold", hold), ("attack", attack), ("release", release)):
        if not math.isfinite(value) or value < 0:
            raise InputError("voice activity %s must be >= 0 seconds, got %r." % (name, value))
    n = int(num_frames)
    db = frame_levels_db(waveform, sample_rate, n, fps)
    inside = torch.arange(n) * (sample_rate / fps) < torch.as_tensor(waveform).shape[-1]   # frames with audio
    loud = torch.quantile(db[inside], 0.95) if bool(inside.any()) else db.new_tensor(-120.0)
    active = ((db > loud + threshold_db) & (db > floor_db)).double()
    h = int(round(hold * fps))
    if h > 0:
        active = torch.nn.functional.max_pool1d(active[None, None], 2 * h + 1, stride=1, padding=h)[0, 0]
    up = 1.0 / max(1.0, attack * fps)
    down = 1.0 / max(1.0, release * fps)
    ramp = torch.empty(n, dtype=torch.float64)
    level = float(active[0]) if n else 0.0
    for i, a in enumerate(active.tolist()):
        level = min(a, level + up) if a > level else max(a, level - down)
        ramp[i] = level
    return (ramp * ramp * (3.0 - 2.0 * ramp)).float()


MOUTH_EXP_MODES = ("keep", "neutral", "source")


def relax_mouth(motion, activity, closed_ratio=0.0, open_ratio=None, mouth_exp="keep", source=None):
    """Close the mouth where ``activity`` [N] (0 silent .. 1 voiced) is low.

    lip_ratio target = closed + (base - closed) * activity, base being the existing lip
    target or ``open_ratio`` (give the source's lip ratio: with that target the lip MLP
    leaves a voiced frame as it is).  mouth_exp "neutral" / "source" also blends the mouth
    keypoints' exp (MOUTH_KP) towards zero / the source's exp by (1 - activity).
    """
    n = motion.num_frames
    a = per_frame(activity, n, "voice activity").clamp(0.0, 1.0)
    if mouth_exp not in MOUTH_EXP_MODES:
        raise InputError("mouth_exp must be one of %s, got %r." % (", ".join(MOUTH_EXP_MODES), mouth_exp))
    changes = {}
    if mouth_exp != "keep":
        motion = require_absolute(motion, source, "Relaxing the mouth expression")
        if mouth_exp == "source":
            if source is None:
                raise InputError("mouth_exp 'source' needs the source face: connect it (or use 'neutral').")
            info = kp_info(source, "source")
            if "exp" not in info:
                raise InputError("the source has no 'exp' to relax the mouth towards.")
            ref = info["exp"]
        else:
            ref = torch.zeros(21, 3)
        mask = torch.zeros(21, 1)
        mask[list(MOUTH_KP)] = 1.0
        w = (1.0 - a)[:, None, None] * mask
        changes["exp"] = motion.exp + w * (ref - motion.exp)
    if LIP in motion.extra:
        base = motion.extra[LIP].reshape(n, -1)[:, -1]
    elif open_ratio is not None:
        base = per_frame(open_ratio, n, "open_ratio")
    else:
        raise InputError("The MOTION has no lip target: connect the source face (its lip-open ratio is used "
                         "while speaking) or give open_ratio.")
    closed = float(closed_ratio)
    extra = dict(motion.extra)
    extra[LIP] = (closed + (base - closed) * a).clamp(min=0.0)[:, None]
    return done(motion, "relax_mouth", extra=extra, **changes)


def silence_relax(motion, waveform, sample_rate, threshold_db=-30.0, floor_db=-55.0, hold=0.2, attack=0.08,
                  release=0.25, closed_ratio=0.0, open_ratio=None, mouth_exp="keep", source=None):
    """:func:`voice_activity` of the audio at the motion's frames, then :func:`relax_mouth`.

    waveform: [T], [C,T] or [B,C,T] at ``sample_rate`` (any rate; 16 kHz in the pipeline),
    starting at the motion's frame 0.  Returns (new motion, activity [N]).
    """
    activity = voice_activity(waveform, sample_rate, motion.num_frames, motion.fps, threshold_db, floor_db,
                              hold, attack, release)
    return relax_mouth(motion, activity, closed_ratio, open_ratio, mouth_exp, source), activity
