"""Keyframes: the text / JSON parser and the eased interpolation between keyframes."""

import json
import math
import re

import torch

from ...errors import InputError


EASINGS = ("linear", "ease-in-out", "cubic", "ease-in", "ease-out", "hold")
_EASING_ALIASES = {"smoothstep": "ease-in-out", "ease": "ease-in-out", "easeinout": "ease-in-out",
                   "ease_in_out": "ease-in-out", "step": "hold", "constant": "hold", "ease_in": "ease-in",
                   "ease_out": "ease-out", "lerp": "linear"}
POSE_KEYS = ("pitch", "yaw", "roll", "tx", "ty", "scale")
POSE_DEFAULTS = (0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
KEYFRAME_SYNTAX = ("one keyframe per line or separated by ';': '<frame>: <pitch>, <yaw>, <roll>[, <tx>, <ty>"
                   "[, <scale>]] [easing]' (frame as 50, or seconds as 2.0s), e.g. '0: 0,0,0; 2s: 0,15,0 "
                   "ease-in-out; 4s: 0,0,0'; or JSON [{\"frame\": 0, \"yaw\": 15, \"easing\": \"linear\"}, ...]; "
                   "easings: " + ", ".join(EASINGS))


def _easing(name, what):
    key = str(name).strip().lower()
    key = _EASING_ALIASES.get(key, key)
    if key not in EASINGS:
        raise InputError("%s: unknown easing %r; use one of %s." % (what, name, ", ".join(EASINGS)))
    return key


def ease(u, easings):
    """Easing curves e(u) for u [N] in [0, 1]; ``easings``: one name per element (or a
    LongTensor of indices into EASINGS).  All are monotone with e(0) = 0 and e(1) = 1;
    "hold" stays 0 until u = 1."""
    codes = easings if torch.is_tensor(easings) else \
        torch.as_tensor([EASINGS.index(_easing(e, "easing")) for e in easings], dtype=torch.long)
    cubic = torch.where(u < 0.5, 4.0 * u ** 3, 1.0 - (2.0 - 2.0 * u) ** 3 / 2.0)
    table = torch.stack([u, u * u * (3.0 - 2.0 * u), cubic, u * u, 1.0 - (1.0 - u) ** 2,
                         (u >= 1.0).to(u.dtype)], dim=0)
    return table.gather(0, codes[None])[0]


def _parse_when(text, fps, what):
    s = str(text).strip().lower()
    try:
        if s.endswith("s"):
            return float(s[:-1]) * fps
        return float(s[:-1] if s.endswith("f") else s)
    except ValueError:
        raise InputError("%s: %r is not a frame number or a time like 2.5s." % (what, text)) from None


def parse_keyframes(spec, fps, keys=POSE_KEYS, defaults=POSE_DEFAULTS, default_easing="linear",
                    what="keyframes"):
    """Keyframes -> (frames float64 [K], values float32 [K, len(keys)], easings list of K names).

    ``spec`` is a list of dicts, a JSON string (a list of dicts or {"keyframes": [...]}) or
    the compact text syntax (see KEYFRAME_SYNTAX; with ``keys=("value",)`` a curve
    "0: 0.3; 2s: 0 ease-in-out").  A dict has "frame" or "time" (seconds), any of ``keys``
    (missing ones take ``defaults``) and optionally "easing".  A keyframe's easing shapes
    the segment from it to the next keyframe.  Keyframes are sorted by frame; two on
    the same frame are an error.
    """
    default_easing = _easing(default_easing, what)
    entries = []
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise InputError("%s are empty: %s" % (what, KEYFRAME_SYNTAX))
        if text[0] in "[{":
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError("%s: invalid JSON (%s). %s" % (what, exc, KEYFRAME_SYNTAX)) from None
        else:
            spec = None
            for i, line in enumerate(re.split(r"[;\n]", text)):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                label = "%s entry %d (%r)" % (what, len(entries) + 1, line)
                when, sep, rest = line.partition(":")
                if not sep:
                    raise InputError("%s has no ':'. %s" % (label, KEYFRAME_SYNTAX))
                words = rest.split()
                easing = default_easing
                if len(words) > 1 and re.fullmatch(r"[a-zA-Z][a-zA-Z_-]*", words[-1]):
                    easing = _easing(words.pop(), label)
                tokens = " ".join(words).replace(",", " ").split()
                if not 1 <= len(tokens) <= len(keys):
                    raise InputError("%s: expected 1 to %d numbers (%s), got %d. %s"
                                     % (label, len(keys), ", ".join(keys), len(tokens), KEYFRAME_SYNTAX))
                try:
                    numbers = [float(tok) for tok in tokens]
                except ValueError:
                    raise InputError("%s: %r are not all numbers. %s" % (label, rest.strip(), KEYFRAME_SYNTAX)) from None
                values = numbers + list(defaults[len(numbers):])
                entries.append((_parse_when(when, fps, label), values, easing, label))
    if spec is not None:
        if isinstance(spec, dict) and "keyframes" in spec:
            spec = spec["keyframes"]
        if not isinstance(spec, (list, tuple)) or not spec:
            raise InputError("%s must be a non-empty list of keyframes. %s" % (what, KEYFRAME_SYNTAX))
        allowed = set(keys) | {"frame", "time", "easing"}
        for i, item in enumerate(spec):
            label = "%s keyframe %d" % (what, i + 1)
            if not isinstance(item, dict):
                raise InputError("%s is not an object: %r. %s" % (label, item, KEYFRAME_SYNTAX))
            unknown = sorted(set(item) - allowed)
            if unknown:
                raise InputError("%s has unknown fields %s; allowed: %s." % (label, unknown, ", ".join(sorted(allowed))))
            if ("frame" in item) == ("time" in item):
                raise InputError("%s needs exactly one of 'frame' or 'time' (seconds)." % label)
            try:
                when = float(item["frame"]) if "frame" in item else float(item["time"]) * fps
                values = [float(item.get(k, d)) for k, d in zip(keys, defaults)]
            except (TypeError, ValueError):
                raise InputError("%s has a value that is not a number: %r." % (label, item)) from None
            entries.append((when, values, _easing(item.get("easing", default_easing), label), label))
    for when, values, _, label in entries:
        if not all(math.isfinite(v) for v in [when] + values):
            raise InputError("%s has a NaN or infinite value." % label)
    entries.sort(key=lambda e: e[0])
    for a, b in zip(entries[:-1], entries[1:]):
        if abs(a[0] - b[0]) < 1e-9:
            raise InputError("%s and %s are on the same frame %g." % (a[3], b[3], a[0]))
    frames = torch.tensor([e[0] for e in entries], dtype=torch.float64)
    values = torch.tensor([e[1] for e in entries], dtype=torch.float32)
    return frames, values, [e[2] for e in entries]


def interpolate_keyframes(frames, values, num_frames, easings):
    """Values at frames 0..N-1 from keyframes (frames [K] increasing, values [K,D]) -> [N,D].

    Before the first / after the last keyframe the value is held.  Between keyframes k and
    k+1: v_k + (v_k+1 - v_k) * ease_k(u), u the linear position in the segment.  At a
    keyframe's frame the value is exactly v_k.
    """
    frames = torch.as_tensor(frames, dtype=torch.float64)
    values = torch.as_tensor(values, dtype=torch.float32)
    pos = torch.arange(int(num_frames), dtype=torch.float64)
    if frames.shape[0] == 1:
        return values[:1].expand(pos.shape[0], -1).clone()
    k = (torch.searchsorted(frames, pos, right=True) - 1).clamp(0, frames.shape[0] - 2)
    u = ((pos - frames[k]) / (frames[k + 1] - frames[k])).clamp(0.0, 1.0)
    codes = torch.as_tensor([EASINGS.index(e) for e in easings], dtype=torch.long)[k]
    e = ease(u, codes).float()[:, None]
    return values[k] + (values[k + 1] - values[k]) * e
