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
        raise InputError("%s must be a number, got %r." % (name, value)) from None
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

