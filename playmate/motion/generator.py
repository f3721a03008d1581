"""The motion-generator interface that Playmate, JoyVASA and Ditto implement.

Every generator turns speech (+ the source face's kp_info, an emotion, guidance weights) into a
:class:`~playmate.motion.types.Motion` with exactly ``round(T / 16000 * fps)`` frames::

    motion = generator.generate(audio_16k, source_kp_info, fps=25.0, steps=None, cfg_audio=None,
                                cfg_emotion=None, emotion=None, intensity=1.0, seed=0,
                                audio_features=None, audio_encoder=None, lip_guidance=None,
                                progress=None)

``None`` for ``steps`` / ``cfg_audio`` / ``cfg_emotion`` means the generator's own default
(:attr:`MotionGenerator.defaults`, e.g. the release's values).  Guidance is nested:
``e = e(0,0) + w_a [e(a,0) - e(0,0)] + w_e [e(a,e) - e(a,0)]`` (w_a = ``cfg_audio``,
w_e = ``cfg_emotion``); a generator without emotion control ignores ``emotion`` / ``cfg_emotion``
and says so in ``motion.info["emotion"]``.  ``audio_features`` / ``audio_encoder`` are only read
by generators with ``needs_audio_encoder`` (speech features from a separate encoder);
``lip_guidance`` (:class:`playmate.motion.lip_guidance.LipGuidance`) only by generators with
``supports_lip_guidance`` -- the others refuse it with a clear error.  ``progress(done, total)``
is called after every denoising step and may raise to stop.
"""

import math
from dataclasses import dataclass

import torch
from typing import Protocol, runtime_checkable

from ..errors import InputError


@dataclass(frozen=True)
class SamplingDefaults:
    """A generator's sampling defaults and the range of ``steps`` it accepts."""
    steps: int
    cfg_audio: float
    cfg_emotion: float = 0.0
    min_steps: int = 1
    max_steps: int = 1000


@runtime_checkable
class MotionGenerator(Protocol):
    name: str                      # "playmate", "joyvasa", "ditto"
    supports_emotion: bool
    supports_lip_guidance: bool
    needs_audio_encoder: bool
    defaults: SamplingDefaults

    @property
    def device(self): ...

    def generate(self, audio_16k, source=None, *, fps=25.0, steps=None, cfg_audio=None, cfg_emotion=None,
                 emotion=None, intensity=1.0, seed=0, audio_features=None, audio_encoder=None,
                 lip_guidance=None, progress=None):
        ...


# ------------------------------------------------------------- one rule per argument
def finite(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError("%s must be a number, got %r (not a number)." % (name, value)) from None
    if not math.isfinite(value):
        raise InputError("%s must be finite, got %r." % (name, value))
    return value


def positive(value, name):
    value = finite(value, name)
    if value <= 0:
        raise InputError("%s must be a positive number, got %r." % (name, value))
    return value


def guidance(value, default, name):
    """A guidance weight: ``default`` for None, else a finite number >= 0."""
    value = default if value is None else finite(value, name)
    if value < 0:
        raise InputError("Guidance weights must be >= 0 (got %s=%r)." % (name, value))
    return value


def check_steps(steps, defaults, who):
    """The one ``steps`` rule: None = the generator's default, else an integer in its range."""
    if steps is None:
        return defaults.steps
    try:
        ivalue = int(steps)
    except (TypeError, ValueError):
        raise InputError("steps must be an integer, got %r." % (steps,)) from None
    if ivalue != steps or not defaults.min_steps <= ivalue <= defaults.max_steps:
        raise InputError("steps must be an integer in %d..%d for the %s generator, got %r."
                         % (defaults.min_steps, defaults.max_steps, who, steps))
    return ivalue


def check_audio(audio):
    """16 kHz mono speech -> float32 CPU tensor [T] (a [1, T] / [T, 1] array is flattened)."""
    try:
        a = torch.as_tensor(audio)
    except Exception:
        raise InputError("audio must be a 1-D float array of 16 kHz samples, got %s."
                         % type(audio).__name__) from None
    if a.dim() == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.dim() != 1 or a.shape[0] == 0 or not a.is_floating_point():
        raise InputError("audio must be a non-empty 1-D float array of 16 kHz mono samples in "
                         "[-1, 1], got shape %s (%s): mix down to mono and convert to float first."
                         % (tuple(a.shape), a.dtype))
    a = a.float().cpu()
    if not torch.isfinite(a).all():
        raise InputError("audio contains NaN or infinite samples.")
    return a


def seeded_draws(seed):
    """draw(shape) -> float32 CPU tensor from a ``torch.Generator`` seeded with ``seed`` (generation)."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return lambda shape: torch.randn(tuple(shape), generator=gen, dtype=torch.float32)


def check_seed(seed):
    try:
        return int(seed)
    except (TypeError, ValueError):
        raise InputError("seed must be an integer, got %r." % (seed,)) from None


def refuse_lip_guidance(generator, lip_guidance):
    if lip_guidance is not None:
        raise InputError("Lip guidance needs a Playmate generator; the %s generator has none: set "
                         "lip_guidance_scale to 0." % generator.name)


def is_generator(obj) -> bool:
    return isinstance(obj, MotionGenerator)

