"""Checks of the values core nodes hand to ours, at the node boundary.

Core nodes legitimately produce values our nodes cannot use: Get Video Components gives
``None`` audio for a video without sound and an empty image batch for a video without
frames.  Each check raises one line naming the node, the input and what to connect instead,
before any model is loaded (no maths here: the library does the work).
"""

import torch

from playmate.errors import InputError

NO_SOUND = "None, as Get Video Components gives for a video without sound"


def _audio_problem(audio):
    """Why ``audio`` is no usable core AUDIO (None when it is one)."""
    if audio is None:
        return "got no audio (%s)" % NO_SOUND
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        return "got %s, not an AUDIO value (a dict with 'waveform' and 'sample_rate')" % type(audio).__name__
    waveform = audio["waveform"]
    if not isinstance(waveform, torch.Tensor) or waveform.dim() not in (2, 3):
        return "has a waveform of shape %s, not [batch, channels, samples]" % (tuple(getattr(waveform, "shape", ())),)
    if waveform.numel() == 0:
        return "has no samples (waveform shape %s)" % (tuple(waveform.shape),)
    return None


def required_audio(audio, node, name, fix):
    """``audio`` when it is a core AUDIO with samples; else one line: node, input, ``fix``."""
    problem = _audio_problem(audio)
    if problem is not None:
        raise InputError("%s: input '%s' %s: %s." % (node, name, problem, fix))
    return audio


def optional_audio(audio, node, name):
    """None (nothing connected, or a video without sound) or a checked core AUDIO."""
    if audio is None:
        return None
    return required_audio(audio, node, name, "connect audio with samples, or disconnect '%s'" % name)


def image_frames(image, node, name, fix, min_frames=1):
    """A core IMAGE batch [B,H,W,C] with at least ``min_frames`` frames, else one line naming the input."""
    if image is None or not isinstance(image, torch.Tensor):
        problem = "got %s, not an IMAGE batch" % ("nothing (None)" if image is None else type(image).__name__)
    elif image.dim() == 4 and image.shape[0] == 0:
        problem = ("is empty: no frames (shape %s, as Get Video Components gives for a video without frames)"
                   % (tuple(image.shape),))
    elif image.dim() != 4 or image.shape[-1] not in (3, 4) or image.shape[1] == 0 or image.shape[2] == 0:
        problem = "has shape %s, not an IMAGE batch [frames, height, width, 3]" % (tuple(image.shape),)
    elif image.shape[0] < min_frames:
        problem = "has %d frame(s); this node needs at least %d" % (image.shape[0], min_frames)
    else:
        return image
    raise InputError("%s: input '%s' %s: %s." % (node, name, problem, fix))
