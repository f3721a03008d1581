"""Ditto's 8-class emotion condition, from our emotion values or the release's ``emo`` setting.

Classes in Ditto's order (:data:`playmate.motion.emotion.DITTO_ORDER`): 0 Angry, 1 Disgust,
2 Fear, 3 Happy, 4 Neutral, 5 Sad, 6 Surprise, 7 Contempt.  The release turns a label k into
``softmax(8 e_k)`` and a list of labels into ``softmax(8 sum_k e_k)`` (float32).

Ours: per-frame weights p [N, 8] (rows sum to 1, from :func:`playmate.motion.emotion.frame_weights`)
become ``v = softmax(8 p / max(p))`` -- one label gives the release's vector exactly, an equal
mixture of labels the release's list-of-labels vector -- and an intensity i blends towards the
neutral condition: ``v_i = neutral + i (v - neutral)``.

The release's own ``emo`` values (what the cfg's ``default_kwargs`` hold) are accepted as they
are: an int, a list of ints, a list of such lists (one per frame, cycled) or a numpy array
[m, 8] used verbatim and cycled (``emo[i % m]`` for frame i).
"""

import numpy as np

from ...errors import InputError
from ..emotion import DITTO_ORDER, frame_weights, to_ditto_order

NEUTRAL_INDEX = DITTO_ORDER.index("neutral")
LOGIT = 8.0


def softmax32(x):
    """scipy.special.softmax along the last axis, in float32 as the release computes it."""
    x = np.asarray(x, np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def label_vector(labels):
    """The release's ``_get_emo_avg``: 8 at each listed label, then softmax -> float32 [8]."""
    v = np.zeros(8, np.float32)
    v[list(labels)] = LOGIT
    return softmax32(v)


NEUTRAL = label_vector([NEUTRAL_INDEX])


def _label(k, what):
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 0 <= int(k) < 8:
        raise InputError("%s: emotion labels are integers 0..7 (%s), got %r." % (what, ", ".join(DITTO_ORDER), k))
    return int(k)


def release_rows(emo, what="emo"):
    """The release's ``emo`` (int | [int] | [[int]] | ndarray [m, 8]) -> float32 [m, 8] (Ditto order)."""
    if isinstance(emo, np.ndarray):
        arr = np.asarray(emo, np.float32)
        if arr.ndim != 2 or arr.shape[1] != 8 or arr.shape[0] < 1 or not np.isfinite(arr).all():
            raise InputError("%s: an emotion array must have shape [m, 8] (Ditto order: %s) with finite values, "
                             "got %s." % (what, ", ".join(DITTO_ORDER), arr.shape))
        return arr
    if isinstance(emo, (list, tuple)) and emo and all(isinstance(e, (list, tuple)) for e in emo):
        return np.stack([label_vector([_label(k, what) for k in e]) for e in emo])
    if isinstance(emo, (list, tuple)) and 0 < len(emo) < 8:
        return label_vector([_label(k, what) for k in emo])[None]
    return label_vector([_label(emo, what)])[None]


def _blend(rows, intensity):
    """neutral + i (v - neutral) per row (rows untouched where i == 1)."""
    i = np.asarray(intensity, np.float32).reshape(-1, 1)
    return np.where(i == 1.0, rows, NEUTRAL + i * (rows - NEUTRAL)).astype(np.float32)


def condition_rows(emotion, num_frames, intensity=1.0, default=4, fps=25.0):
    """Ditto's emotion condition for every frame -> float32 [N, 8] (Ditto order).

    ``emotion``: None or "none" (the release default ``default``, i.e. the cfg's ``emo``), a
    numpy array [m, 8] in Ditto order (the release's per-frame array, cycled), or any other value
    :func:`playmate.motion.emotion.frame_weights` takes (name, mixture, schedule, dict, tensor in
    our order, sampled at ``fps``); ``intensity`` scales every frame (0 = neutral)."""
    n = int(num_frames)
    fw = None
    if emotion is not None and not isinstance(emotion, np.ndarray):
        fw = frame_weights(emotion, n, fps, intensity)
    if fw is None:
        rows = release_rows(default if emotion is None or not isinstance(emotion, np.ndarray) else emotion,
                            "emotion array" if isinstance(emotion, np.ndarray) else "the cfg's emo")
        scale = float(intensity)
        if not np.isfinite(scale) or scale < 0:
            raise InputError("intensity must be a finite number >= 0, got %r." % (intensity,))
        return _blend(rows[np.arange(n) % rows.shape[0]], np.full(n, scale, np.float32))
    weights, inten = fw
    p = to_ditto_order(weights).numpy().astype(np.float32)
    v = softmax32(LOGIT * p / p.max(axis=1, keepdims=True))
    return _blend(v, inten.numpy())
