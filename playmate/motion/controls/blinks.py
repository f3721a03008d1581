"""Natural blinks: a seeded schedule, the eyelid closure curve, applied to the eye target or exp."""

import math

import numpy as np
import torch

from ...errors import InputError
from .common import EYE, done, per_frame
from .expression import expression_delta


def blink_schedule(num_frames, fps, rate=15.0, duration=0.15, min_gap=1.0, seed=0, jitter=0.2):
    """Seeded natural blink times -> list of (start, peak, stop) frame indices (stop exclusive).

    rate: blinks per minute (people blink ~10-20/min); the count is round(rate * minutes),
    lowered only if that many blinks (with ``min_gap`` seconds between the end of one and
    the start of the next) cannot fit.  duration: seconds per blink (each varies by
    +-``jitter`` of it, at least 2 frames).  The peak (fully closed) frame sits 40 % into
    the blink: closing is faster than opening.  Frame 0 is never part of a blink.
    The same arguments always give the same schedule.
    """
    n, fps = int(num_frames), float(fps)
    for name, value in (("rate", rate), ("duration", duration), ("min_gap", min_gap), ("jitter", jitter)):
        if not math.isfinite(value) or value < 0:
            raise InputError("blink %s must be >= 0, got %r." % (name, value))
    if duration <= 0 or fps <= 0:
        raise InputError("blink duration and fps must be positive (got %r s, %r fps)." % (duration, fps))
    rng = np.random.default_rng(int(seed) & 0xFFFFFFFF)
    count = int(round(rate * n / fps / 60.0))
    lengths = np.maximum(2, np.round(duration * fps * (1.0 + jitter * rng.uniform(-1.0, 1.0, count)))).astype(int)
    gap = int(math.ceil(min_gap * fps))
    usable = n - 1                                  # frame 0 stays open
    while count > 0 and lengths[:count].sum() + (count - 1) * gap > usable:
        count -= 1
    lengths = lengths[:count]
    if count == 0:
        return []
    slack = usable - int(lengths.sum()) - (count - 1) * gap
    offsets = np.sort(rng.integers(0, slack + 1, count))
    before = np.concatenate([[0], np.cumsum(lengths[:-1] + gap)])
    starts = 1 + offsets + before
    peaks = starts + np.round(0.4 * (lengths - 1)).astype(int)
    return [(int(s), int(p), int(s + length)) for s, p, length in zip(starts, peaks, lengths)]


def blink_closure(num_frames, blinks):
    """Eyelid closure [N] in [0, 1] for ``blinks`` (start, peak, stop): 1 exactly at each
    peak, smoothstep ramps (closing up to the peak, opening after), 0 outside blinks."""
    out = torch.zeros(int(num_frames), dtype=torch.float32)
    for start, peak, stop in blinks:
        k = torch.arange(start, stop, dtype=torch.float32)
        up = (k - start + 1) / (peak - start + 1)
        down = 1.0 - (k - peak) / (stop - peak)
        u = torch.where(k <= peak, up, down).clamp(0.0, 1.0)
        keep = k < num_frames
        out[start:min(stop, num_frames)] = torch.maximum(out[start:min(stop, num_frames)],
                                                         (u * u * (3.0 - 2.0 * u))[keep])
    return out


BLINK_METHODS = ("eye target", "expression")


def add_blinks(motion, rate=15.0, duration=0.15, min_gap=1.0, seed=0, depth=1.0, open_ratio=None,
               method="eye target", jitter=0.2):
    """Add natural blinks; returns (new motion, list of (start, peak, stop) frames).

    method "eye target": the eye_ratio target becomes base * (1 - depth * closure), where
    base is the motion's existing target or the constant ``open_ratio`` (give the
    source's eye ratio) -- existing blinks/curves are kept (merged multiplicatively).
    method "expression": the editor's blink direction (``depth`` x closure) is added to exp,
    for motions rendered without eye retargeting.
    """
    if not math.isfinite(depth) or depth < 0:
        raise InputError("blink depth must be >= 0, got %r." % (depth,))
    blinks = blink_schedule(motion.num_frames, motion.fps, rate, duration, min_gap, seed, jitter)
    closure = blink_closure(motion.num_frames, blinks) * float(depth)
    op = "blinks(%d)" % len(blinks)
    if method == "expression":
        delta = closure[:, None, None] * expression_delta({"blink": 1.0})
        return done(motion, op, exp=motion.exp + delta), blinks
    if method != "eye target":
        raise InputError("blink method must be one of %s, got %r." % (", ".join(BLINK_METHODS), method))
    if EYE in motion.extra:
        base = motion.extra[EYE].reshape(motion.num_frames, -1)[:, -1]
    elif open_ratio is not None:
        base = per_frame(open_ratio, motion.num_frames, "open_ratio")
    else:
        raise InputError("The MOTION has no eye target: connect the source face (its eye-open ratio is the "
                         "open level) or give open_ratio.")
    extra = dict(motion.extra)
    extra[EYE] = (base * (1.0 - closure)).clamp(min=0.0)[:, None]
    return done(motion, op, extra=extra), blinks
