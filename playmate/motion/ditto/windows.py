"""Condition rows and the sliding-window fusion of Ditto (``ConditionHandler``, ``Audio2Motion``,
offline ``StreamSDK``); the audio features come from :mod:`.hubert`.

Condition row of frame i: ``[aud_i (1024) | emo_i (8) | eye_open (2) | eye_ball (6) | sc (63)]``
(:class:`Conditions`, built window by window; the eye and sc columns are the source image's).

Windows of L = seq_frames rows start every V = L - F frames (F = ``overlap_v2``); a window
past the end repeats the last row.  The first prediction is the result; each later one is
cross-faded over F frames with weights ``j/F`` (j < F) onto the result's tail and its last V
frames appended.  ``smooth(a, b)`` replaces rows a..b-1, dims ``:202`` (never exp), by the mean
of their k = ``smo_k_d`` neighbours (the window clipped to the sequence, old values).  The
next window's cond_frame is the result's row ``len - F - 1`` (``fix_kp_cond`` = 0), or every
``fix_kp_cond``-th window the source's vector with only ``fix_kp_cond_dim`` taken from that
row.  At the end: cut to N frames, smooth all, clip to ``v_min_max_for_clip``.  The result is
written into one preallocated buffer, so memory grows only with the output.
"""

from dataclasses import dataclass

import numpy as np
import torch

from ...errors import InputError

SMOOTH_DIMS = 202              # the release smooths [:202] (scale, angles, t), never exp


# ------------------------------------------------------------------------ condition rows
class Conditions:
    """Condition rows of a clip, served window by window (nothing of size N x 1103 is built).

    ``features`` [N, 1024]; ``emotion`` [N, 8] (Ditto order, one row per frame); ``eye_open`` [2],
    ``eye_ball`` [6], ``sc`` [63] of the source; ``neutral`` [8] the neutral emotion condition."""

    def __init__(self, features, emotion, eye_open, eye_ball, sc, neutral):
        self.features = torch.as_tensor(np.asarray(features, np.float32))
        self.emotion = torch.as_tensor(np.asarray(emotion, np.float32))
        n = self.features.shape[0]
        if self.features.dim() != 2 or self.emotion.shape != (n, 8):
            raise InputError("Ditto conditions need features [N, D] and one emotion row per frame [N, 8]; got %s "
                             "and %s." % (tuple(self.features.shape), tuple(self.emotion.shape)))
        self.source = torch.cat([torch.as_tensor(np.asarray(v, np.float32)).reshape(-1)
                                 for v in (eye_open, eye_ball, sc)])
        self.neutral = torch.as_tensor(np.asarray(neutral, np.float32)).reshape(8)

    def __len__(self):
        return self.features.shape[0]

    def _rows(self, idx, emotion):
        src = self.source.expand(len(idx), -1)
        return torch.cat([self.features[idx], emotion, src], dim=1)[None]

    def window(self, start, length):
        """(cond [1, length, C], neutral-emotion cond or None when the window's emotion is neutral)."""
        idx = torch.arange(start, start + length).clamp(max=len(self) - 1)
        emo = self.emotion[idx]
        neutral = self.neutral.expand_as(emo)
        cond = self._rows(idx, emo)
        return cond, (None if torch.equal(emo, neutral) else self._rows(idx, neutral))


# ------------------------------------------------------------------------ windows
@dataclass(frozen=True)
class WindowOptions:
    seq_frames: int
    overlap: int = 10
    smooth_k: int = 3
    fix_kp_cond: int = 0
    fix_kp_cond_dim: tuple = None
    clip: tuple = None          # (v_min [D], v_max [D]) or None

    @classmethod
    def from_kwargs(cls, kw, seq_frames):
        """From the setup kwargs (``overlap_v2``, ``smo_k_d``, ``fix_kp_cond``, ``fix_kp_cond_dim``,
        ``v_min_max_for_clip``)."""
        overlap = int(kw["overlap_v2"])
        if not 0 <= overlap < seq_frames:
            raise InputError("overlap_v2 must be in 0..%d (the window has %d frames), got %d."
                             % (seq_frames - 1, seq_frames, overlap))
        dims = kw["fix_kp_cond_dim"]
        vmm = kw["v_min_max_for_clip"]
        clip = None if vmm is None else tuple(torch.as_tensor(np.asarray(vmm[i], np.float32)) for i in (0, 1))
        return cls(seq_frames, overlap, int(kw["smo_k_d"]), int(kw["fix_kp_cond"]),
                   None if dims is None else (int(dims[0]), int(dims[1])), clip)

    @property
    def valid(self):
        return self.seq_frames - self.overlap

    def starts(self, n):
        return range(0, n, self.valid)


def smooth(res, a, b, n, k):
    """Rows a..b-1 of ``res[:n]``, dims :202, := mean of the rows within k//2 (old values)."""
    if k <= 1 or b <= a:
        return
    h = k // 2
    lo, hi = max(0, a - h), min(n, b + h)
    old = res[lo:hi, :SMOOTH_DIMS].clone()
    rows = torch.arange(a, b)
    total = torch.zeros(b - a, old.shape[1], dtype=res.dtype)
    count = torch.zeros(b - a, 1, dtype=res.dtype)
    for off in range(-h, h + 1):
        j = rows + off
        ok = (j >= 0) & (j < n)
        total[ok] += old[j[ok] - lo]
        count[ok] += 1
    res[a:b, :SMOOTH_DIMS] = total / count


def next_kp_cond(res, length, opts, source_vec, windows_done):
    """cond_frame [1, D] of the next window after ``windows_done`` windows (result has ``length`` rows)."""
    row = res[length - opts.overlap - 1]
    if opts.fix_kp_cond > 0 and windows_done % opts.fix_kp_cond == 0:
        kp = source_vec.reshape(-1).clone()
        if opts.fix_kp_cond_dim is not None:
            ds, de = opts.fix_kp_cond_dim
            kp[ds:de] = row[ds:de]
        return kp[None]
    return row.clone()[None]


def run_windows(conditions, sample, source_vec, opts):
    """The clip's motion [N, D] (float32, CPU): windows sampled with ``sample(kp_cond [1,D],
    cond [1,L,C], cond_neutral) -> [1,L,D]``, fused, smoothed, cut and clipped.

    ``source_vec`` [1, D] is the source's motion vector (the first cond_frame)."""
    n, seq, V, F = len(conditions), opts.seq_frames, opts.valid, opts.overlap
    starts = opts.starts(n)
    kp_cond = source_vec.reshape(1, -1).float().clone()
    res = torch.empty(seq + (len(starts) - 1) * V, kp_cond.shape[1])
    alpha = (torch.arange(F, dtype=torch.float32) / F)[:, None]
    length = 0
    for w, start in enumerate(starts):
        cond, cond_neutral = conditions.window(start, seq)
        pred = sample(kp_cond, cond, cond_neutral)[0].float().cpu()
        if w == 0:
            res[:seq] = pred
            length = seq
            smooth(res, 0, seq, length, opts.smooth_k)
        else:
            res[length - F:length] = res[length - F:length] * (1 - alpha) + pred[seq - V - F:seq - V] * alpha
            res[length:length + V] = pred[seq - V:]
            length += V
            smooth(res, length - V - F, length - V + 1, length, opts.smooth_k)
        kp_cond = next_kp_cond(res, length, opts, source_vec, w + 1)
    res = res[:n]
    smooth(res, 0, n, n, opts.smooth_k)
    if opts.clip is not None:
        res = torch.minimum(torch.maximum(res, opts.clip[0]), opts.clip[1])
    return res
