"""Audio features, condition rows and the sliding-window fusion of Ditto (``Wav2FeatHubert``,
``ConditionHandler``, ``Audio2Motion``, offline ``StreamSDK``).

Audio features (25 fps, 1024-d) from the streaming HuBERT ``encode(chunk [6480]) -> [T, 1024]``
(50 Hz; the released ONNX graph): :func:`wav2feat` pads 2000 zeros in front and 6480 behind,
encodes the chunk starting at ``int(i * 0.04 * 16000)`` for i = 0, 5, 10, ... and keeps
``enc[-14:-4]`` averaged in pairs (5 frames), cut to ``ceil(n / 16000 * 25)`` frames;
:func:`online_features` is the same on one chunk (3 past + 5 present + 2 future frames).

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

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import InputError

SAMPLE_RATE = 16000
FPS = 25
CHUNKSIZE = (3, 5, 2)          # past, present, future frames of one HuBERT chunk
FEATURE_DIM = 1024
SMOOTH_DIMS = 202              # the release smooths [:202] (scale, angles, t), never exp


# ------------------------------------------------------------------------ audio features
def num_feature_frames(n_samples):
    """``ceil(n / 16000 * 25)`` in float64, as the release (70400 samples -> 111 frames)."""
    return math.ceil(int(n_samples) / SAMPLE_RATE * FPS)


def chunk_samples(chunksize=CHUNKSIZE):
    return int(sum(chunksize) * 0.04 * SAMPLE_RATE) + 80


def chunk_features(encoding, chunksize=CHUNKSIZE):
    """The present frames of one chunk's encoding [T, 1024] -> [chunksize[1], 1024] (pairs averaged)."""
    enc = np.asarray(encoding, dtype=np.float32)
    start, stop = -sum(chunksize[1:]) * 2, -chunksize[2] * 2
    return enc[start:stop].reshape(chunksize[1], 2, -1).mean(axis=1)


def online_features(chunk, encode, chunksize=CHUNKSIZE):
    """Features of one streaming chunk (``chunk_samples()`` samples) -> [chunksize[1], 1024]."""
    chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
    if chunk.shape[0] != chunk_samples(chunksize):
        raise InputError("A streaming audio chunk must hold %d samples, got %d." % (chunk_samples(chunksize),
                                                                                 chunk.shape[0]))
    return chunk_features(encode(chunk), chunksize)


def wav2feat(audio_16k, encode, chunksize=CHUNKSIZE):
    """Offline features of a whole clip (16 kHz mono float32 [T]) -> float32 [ceil(T/640), 1024]."""
    audio = np.asarray(audio_16k, dtype=np.float32).reshape(-1)
    num_f = num_feature_frames(audio.shape[0])
    split = chunk_samples(chunksize)
    lead = split - int(sum(chunksize[1:]) * 0.04 * SAMPLE_RATE)
    padded = np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(split, np.float32)])
    out = [chunk_features(encode(padded[int(i * 0.04 * SAMPLE_RATE):][:split]), chunksize)
           for i in range(0, num_f, chunksize[1])]
    return np.concatenate(out, axis=0)[:num_f]


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
