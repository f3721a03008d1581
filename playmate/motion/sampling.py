"""A MOTION for an audio clip from any motion generator: the one call the CLI and the nodes make."""

from ..errors import InputError, PlaymateError
from .emotion import parse_emotion


def sample_motion(generator, clip, source_kp_info, emotion="neutral", intensity=1.0, cfg_audio=None,
                  cfg_emotion=None, steps=None, seed=0, audio_encoder=None, lip_guidance=None, progress=None):
    """A MOTION for ``clip`` (:class:`playmate.audio.AudioClip`) from any
    :class:`playmate.motion.generator.MotionGenerator`, exactly
    clip.num_frames long.  None for steps / cfg_audio / cfg_emotion = the generator's defaults."""
    if generator.needs_audio_encoder and clip.features is None and audio_encoder is None:
        raise InputError("The %s generator needs speech features: connect a Load Audio Encoder node "
                         "(or core audio encoder output) to Audio Features." % generator.name)
    emotion = parse_emotion(emotion) if isinstance(emotion, str) else emotion
    motion = generator.generate(
        clip.audio_16k, source_kp_info, fps=clip.fps, steps=steps, cfg_audio=cfg_audio, cfg_emotion=cfg_emotion,
        emotion=emotion, intensity=intensity, seed=seed,
        audio_features=clip.features if generator.needs_audio_encoder else None,
        audio_encoder=audio_encoder if generator.needs_audio_encoder else None,
        lip_guidance=lip_guidance, progress=progress)
    if motion.num_frames != clip.num_frames:  # a generator bug, never silently desync audio and video
        raise PlaymateError("Generator %s returned %d frames for %d expected." % (generator.name, motion.num_frames,
                                                                                  clip.num_frames))
    return motion
