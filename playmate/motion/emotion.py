"""Emotion values: names, mixtures, schedules -- one parser for every generator and node.

An emotion is given as
    * a name:               ``"happy"`` (one of :data:`EMOTIONS`; ``"null"``/``"none"`` = no emotion)
    * a mixture:            ``"happy:0.7,surprised:0.3"`` (weights >= 0, normalised to sum 1)
    * a schedule over time: ``"0:neutral, 2.5:happy, 6:sad@0.6"`` -- at each time (seconds) the
      emotion (a name, or a mixture joined by ``+`` such as ``happy 0.7 + sad 0.3``) starts, with an
      optional ``@intensity``; consecutive keys crossfade linearly over ``crossfade`` seconds centred
      on the key's time (:class:`EmotionSchedule`)
    * a dict name -> weight, a tensor of 8 weights, or per frame [N, 8] (in :data:`EMOTIONS` order).

:func:`frame_weights` turns any of these into per-frame weights [N, 8] (rows sum to 1) and a
per-frame intensity [N]; each generator maps those onto its own condition (Playmate: its emotion
embedding and gate; Ditto: its 8-class vector in :data:`DITTO_ORDER`).
"""

import re
from dataclasses import dataclass

import torch

from ..errors import InputError
from .generator import finite

EMOTIONS = ("neutral", "angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")
NULL_NAMES = ("null", "none", "")
ALIASES = {"disgust": "disgusted", "surprise": "surprised", "anger": "angry", "happiness": "happy",
           "sadness": "sad", "fearful": "fear", "calm": "neutral"}
NEUTRAL = EMOTIONS.index("neutral")
SYNTAX = ("a name (%s), a mixture like 'happy:0.7,sad:0.3', or a schedule like '0:neutral, 2.5:happy, 6:sad@0.6' "
          "(seconds: emotion[@intensity])" % ", ".join(EMOTIONS))


def emotion_index(name, what="emotion"):
    key = ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if key not in EMOTIONS:
        raise InputError("Unknown %s %r: use %s." % (what, name, SYNTAX))
    return EMOTIONS.index(key)


def _normalised(weights, text):
    total = sum(weights.values())
    if total <= 0:
        raise InputError("The emotion %r has no positive weight: give at least one weight > 0." % (text,))
    return {k: v / total for k, v in weights.items()}


def parse_mixture(text, separator=","):
    """'happy' or 'happy:0.7,surprised:0.3' -> {name: weight} (weights sum to 1).

    Inside schedules the separator is '+' and a weight may follow the name after a space
    ('happy 0.7 + sad 0.3')."""
    weights = {}
    for part in str(text).split(separator):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.partition(":") if ":" in part else part.partition(" ")
        name = EMOTIONS[emotion_index(name)]
        w = finite(value.strip(), "Emotion weight for %r" % name) if value.strip() else 1.0
        if w < 0:
            raise InputError("Emotion weight for %r must be >= 0, got %r." % (name, value.strip()))
        weights[name] = weights.get(name, 0.0) + w
    return _normalised(weights, text)


def parse_emotion(text):
    """Any emotion text -> None (no emotion), {name: weight}, or :class:`EmotionSchedule`."""
    key = str(text).strip()
    if key.lower() in NULL_NAMES:
        return None
    if is_schedule(key):
        return EmotionSchedule.parse(key)
    return parse_mixture(key)


def is_schedule(text):
    """True when the text's first entry starts with a time ('0:neutral, 2.5:happy')."""
    return re.match(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)\s*s?\s*:", str(text)) is not None


def weight_vector(weights):
    """{name: weight} -> float32 [8] in :data:`EMOTIONS` order, normalised to sum 1."""
    v = torch.zeros(len(EMOTIONS))
    for name, w in weights.items():
        v[emotion_index(name)] += float(w)
    if not (v >= 0).all() or v.sum() <= 0:
        raise InputError("Emotion weights must be >= 0 with at least one > 0, got %s." % (dict(weights),))
    return v / v.sum()


@dataclass(frozen=True)
class EmotionKey:
    time: float           # seconds
    weights: tuple        # 8 floats in EMOTIONS order, sum 1
    intensity: float = 1.0


@dataclass(frozen=True)
class EmotionSchedule:
    """Emotion over time: keys sorted by time; crossfades of ``crossfade`` seconds centred on each key."""
    keys: tuple
    crossfade: float = 0.5

    @classmethod
    def parse(cls, text, crossfade=0.5):
        keys = []
        for entry in re.split(r"[;,\n]\s*(?=[-+]?(?:\d|\.\d))", str(text).strip()):
            entry = entry.strip().rstrip(",;")
            if not entry:
                continue
            when, sep, what = entry.partition(":")
            if not sep:
                raise InputError("Emotion schedule entry %r needs 'seconds: emotion' (e.g. '2.5: happy@0.8')." % entry)
            t = finite(when.strip().rstrip("s").strip(), "Emotion schedule time")
            if t < 0:
                raise InputError("Emotion schedule times must be >= 0 seconds, got %r." % when.strip())
            what, at, inten = what.partition("@")
            intensity = finite(inten.strip(), "Emotion intensity in %r" % entry) if at else 1.0
            if intensity < 0:
                raise InputError("Emotion intensity must be >= 0, got %r in %r." % (inten.strip(), entry))
            weights = weight_vector(parse_mixture(what, separator="+"))
            keys.append(EmotionKey(t, tuple(float(x) for x in weights), intensity))
        if not keys:
            raise InputError("The emotion schedule %r has no entries: use %s." % (text, SYNTAX))
        keys.sort(key=lambda k: k.time)
        if len({k.time for k in keys}) != len(keys):
            raise InputError("The emotion schedule %r names the same time twice." % (text,))
        return cls(tuple(keys), _crossfade(crossfade))

    def with_crossfade(self, seconds):
        return EmotionSchedule(self.keys, _crossfade(seconds))

    def frames(self, num_frames, fps):
        """(weights [N, 8], intensity [N]) float32 at the frame times i / fps."""
        t = torch.arange(num_frames, dtype=torch.float64) / float(fps)
        w = torch.tensor(self.keys[0].weights, dtype=torch.float64).expand(num_frames, -1).clone()
        inten = torch.full((num_frames,), float(self.keys[0].intensity), dtype=torch.float64)
        for key in self.keys[1:]:
            if self.crossfade > 0:
                a = ((t - (key.time - self.crossfade / 2)) / self.crossfade).clamp(0, 1)
            else:
                a = (t >= key.time).double()
            w = (1 - a[:, None]) * w + a[:, None] * torch.tensor(key.weights, dtype=torch.float64)
            inten = (1 - a) * inten + a * key.intensity
        return w.float(), inten.float()

    def describe(self):
        return {"schedule": [{"time": k.time, "weights": {e: round(v, 4) for e, v in zip(EMOTIONS, k.weights) if v},
                              "intensity": k.intensity} for k in self.keys], "crossfade": self.crossfade}


def _crossfade(seconds):
    seconds = finite(seconds, "crossfade")
    if seconds < 0:
        raise InputError("crossfade must be >= 0 seconds, got %r." % (seconds,))
    return seconds


def frame_weights(emotion, num_frames, fps, intensity=1.0):
    """Any emotion value -> (weights [N, 8] rows summing to 1, intensity [N]), or None for no emotion.

    ``emotion``: text (see :func:`parse_emotion`), dict, :class:`EmotionSchedule`, an object with a
    ``weights`` tensor (the Emotion From Text / From Audio estimate), a tensor [8] or per frame [N, 8].
    ``intensity`` multiplies the per-frame intensity (a schedule's ``@`` values)."""
    inten = finite(intensity, "intensity")
    if inten < 0:
        raise InputError("intensity must be >= 0, got %r." % (intensity,))
    if isinstance(emotion, str):
        emotion = parse_emotion(emotion)
    if emotion is None:
        return None
    if hasattr(emotion, "weights") and not isinstance(emotion, (dict, EmotionSchedule)):
        emotion = emotion.weights
    if isinstance(emotion, EmotionSchedule):
        w, i = emotion.frames(num_frames, fps)
        return w, i * inten
    if isinstance(emotion, dict):
        emotion = weight_vector(emotion)
    x = torch.as_tensor(emotion, dtype=torch.float32).detach().cpu()
    if x.shape[-1:] != (len(EMOTIONS),) or x.dim() > 2 or not torch.isfinite(x).all() or (x < 0).any():
        raise InputError("An emotion tensor must hold 8 weights >= 0 (%s), or one row per frame [N, 8]; got %s."
                         % (", ".join(EMOTIONS), tuple(x.shape)))
    if x.dim() == 2 and x.shape[0] != num_frames:
        raise InputError("The per-frame emotion has %d rows, the clip has %d frames." % (x.shape[0], num_frames))
    x = x.expand(num_frames, -1) if x.dim() == 1 else x
    total = x.sum(dim=1, keepdim=True)
    if (total <= 0).any():
        raise InputError("Every emotion row needs a weight > 0.")
    return (x / total).contiguous(), torch.full((num_frames,), inten)


def describe(emotion):
    """A JSON-able description of an emotion value (for MOTION info)."""
    if isinstance(emotion, EmotionSchedule):
        return emotion.describe()
    if hasattr(emotion, "weights") and not isinstance(emotion, dict):
        emotion = emotion.weights
    if torch.is_tensor(emotion):
        return "tensor%s" % (list(emotion.shape),)
    if isinstance(emotion, dict):
        return {str(k): float(v) for k, v in emotion.items()}
    return emotion


# Ditto's 8 classes (condition_handler._get_emo_avg): 0 Angry, 1 Disgust, 2 Fear, 3 Happy,
# 4 Neutral, 5 Sad, 6 Surprise, 7 Contempt.
DITTO_ORDER = ("angry", "disgusted", "fear", "happy", "neutral", "sad", "surprised", "contempt")
TO_DITTO = [EMOTIONS.index(name) for name in DITTO_ORDER]   # ditto[:, j] = ours[:, TO_DITTO[j]]


def to_ditto_order(weights):
    """[..., 8] in :data:`EMOTIONS` order -> [..., 8] in :data:`DITTO_ORDER`."""
    return weights[..., TO_DITTO]
