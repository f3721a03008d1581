"""Emotion nodes: emotion from a text prompt or a reference clip's audio, and an advanced motion
sampler that takes such an emotion and lip-sync guidance.

PLAYMATE_EMOTION is a :class:`playmate.motion.emotion_space.EmotionEstimate` (mixture weights over
the 8 MEAD emotions, with the scores they came from) or a :class:`playmate.motion.emotion.EmotionSchedule`
(emotions over time, from Emotion Schedule).  Model folders (ComfyUI/models/...):
``text_encoders/all-MiniLM-L6-v2`` (sentence model, downloaded when online),
``playmate_emotion/*.safetensors`` (emotion spaces: ``python -m playmate.train emotion-space``),
``playmate_lipsync/*.safetensors`` (lip classifiers: ``python -m playmate.train lip-classifier``).
"""


from playmate import models
from playmate.models import FOLDERS
from playmate.errors import InputError
from playmate.motion.emotion import EmotionSchedule

from . import comfy_bridge as cb
from .inputs import required_audio
from .motion_nodes import PlaymateSampleMotion, sample_motion

ZERO_SHOT = "zero-shot (no file)"
NO_FILES = "(no files yet)"
NO_CLASSIFIER = "none"
EMOTION_FOLDER = FOLDERS["emotion"]
LIPSYNC_FOLDER = FOLDERS["lipsync"]
TEXT_FOLDER = FOLDERS["text_encoders"]
LIP_MODES = ["every_step", "difference"]


def _files(name):
    return cb.list_files(name, {".safetensors"})


def _path(name, relative):
    path = cb.find_file(name, relative)
    if not path.is_file():
        raise InputError("%r was not found in the models/%s folder: put the .safetensors file there." % (relative, name))
    return path


def _emotion_space(relative):
    return models.load_emotion_space(_path(EMOTION_FOLDER, relative))


def _temperature_input():
    return ("FLOAT", {"default": 0.05, "min": 0.005, "max": 2.0, "step": 0.005, "tooltip":
                      "Softmax temperature: small = one dominant emotion, large = an even mixture."})


def _weights_text(estimate):
    return "%s\nmixture: %s" % (estimate.summary(), estimate.mixture())


class _EmotionNode:
    """What the two emotion estimators share: category, FUNCTION and outputs."""
    CATEGORY = "Playmate/Emotion"
    FUNCTION = "estimate"
    RETURN_TYPES = ("PLAYMATE_EMOTION", "STRING")
    RETURN_NAMES = ("emotion", "weights")


class PlaymateEmotionFromText(_EmotionNode):
    DESCRIPTION = ("Turns a text prompt ('a big happy grin', 'furious and shouting') into emotion weights over the "
                   "8 MEAD emotions for the Sample Motion Advanced node. Zero-shot: cosine similarity of the prompt's "
                   "sentence embedding (all-MiniLM-L6-v2) to written descriptions of each emotion, softmax with the "
                   "temperature. With a trained emotion space file the prompt goes through its text head instead.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text": ("STRING", {"multiline": True, "default": "a big happy grin",
                                "tooltip": "Describe the emotion in plain words (English)."}),
            "temperature": _temperature_input(),
            "emotion_space": ([ZERO_SHOT] + _files(EMOTION_FOLDER), {"default": ZERO_SHOT, "tooltip":
                              "zero-shot needs no training; or a trained emotion space from models/playmate_emotion."}),
        }}

    def estimate(self, text, temperature, emotion_space):
        if emotion_space == ZERO_SHOT:
            estimate = models.zero_shot_emotion(cb.folder_paths_for(TEXT_FOLDER))(text, temperature)
        else:
            encoder = models.text_encoder(cb.folder_paths_for(TEXT_FOLDER))
            estimate = _emotion_space(emotion_space).from_text(encoder, text, temperature)
        return (estimate, _weights_text(estimate))


class PlaymateEmotionSchedule:
    DESCRIPTION = ("Emotion over time for Sample Motion Advanced: '0:neutral, 2.5:happy, 6:sad@0.6' starts each "
                   "emotion at its time in seconds (optional @intensity; a mixture as 'happy 0.7 + surprised 0.3'), "
                   "crossfading between them. Ditto and Playmate generators follow it frame by frame.")
    CATEGORY = "Playmate/Emotion"
    FUNCTION = "schedule"
    RETURN_TYPES = ("PLAYMATE_EMOTION", "STRING")
    RETURN_NAMES = ("emotion", "schedule")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "schedule": ("STRING", {"multiline": True, "default": "0: neutral, 1.5: happy, 4: sad@0.6",
                                    "tooltip": "seconds: emotion[@intensity], separated by commas or new lines."}),
            "crossfade": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 10.0, "step": 0.05,
                                    "tooltip": "Seconds each change takes, centred on its time (0 = a hard cut)."}),
        }}

    def schedule(self, schedule, crossfade):
        value = EmotionSchedule.parse(schedule, crossfade=crossfade)
        text = ", ".join("%g s: %s@%g" % (k.time, "+".join("%s %.2f" % (n, w) for n, w in
                                                          value.describe()["schedule"][i]["weights"].items()),
                                          k.intensity) for i, k in enumerate(value.keys))
        return (value, text)


class PlaymateEmotionFromAudio(_EmotionNode):
    DESCRIPTION = ("Estimates the emotion of a reference clip (any speech recording with the wanted mood) with a "
                   "trained emotion space: its Wav2Vec2 features are pooled and compared with the 8 emotion anchors. "
                   "Use the emotion in Sample Motion Advanced; the speech that drives the lips can be another clip.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "reference_audio": ("AUDIO", {"tooltip": "A clip whose emotion to copy (any sample rate and channels)."}),
            "audio_encoder": ("PLAYMATE_AUDIO_ENCODER", {"tooltip":
                              "Wav2Vec2 from Load Audio Encoder: the one the emotion space was trained with."}),
            "emotion_space": (_files(EMOTION_FOLDER) or [NO_FILES], {"tooltip":
                              "A trained emotion space from models/playmate_emotion."}),
            "temperature": _temperature_input(),
        }}

    def estimate(self, reference_audio, audio_encoder, emotion_space, temperature):
        from playmate.audio import comfy_audio_to_mono16k
        required_audio(reference_audio, "Playmate Emotion From Audio", "reference_audio",
                       "connect a speech clip with the wanted mood (e.g. Load Audio)")
        if emotion_space == NO_FILES:
            raise InputError("No emotion space in models/playmate_emotion: train one with `python -m playmate.train "
                             "emotion-space` (emotion from audio needs trained heads).")
        space = _emotion_space(emotion_space)
        audio = comfy_audio_to_mono16k(reference_audio, name="reference_audio")
        estimate = space.from_audio(audio_16k=audio, encoder=audio_encoder.use(), temperature=temperature)
        return (estimate, _weights_text(estimate))


class PlaymateSampleMotionAdvanced:
    DESCRIPTION = ("Sample Motion with extras: an emotion from Emotion From Text/Audio (overrides the "
                   "emotion list; intensity still applies) and lip-sync guidance by a lip classifier on the mouth "
                   "keypoints (scale 0 = exactly the plain sampler). Playmate generators only for these extras.")
    CATEGORY = "Playmate/Motion"
    FUNCTION = "sample"
    RETURN_TYPES = ("PLAYMATE_MOTION", "INT", "FLOAT")
    RETURN_NAMES = ("motion", "frames", "fps")

    @classmethod
    def INPUT_TYPES(cls):
        base = PlaymateSampleMotion.INPUT_TYPES()
        kind, options = base["required"]["emotion"]
        return {"required": {
            **base["required"],
            "emotion": (kind, dict(options, tooltip="One of the 8 MEAD emotions (ignored when emotion_vector is "
                                                    "connected).")),
        }, "optional": {
            **base["optional"],
            "emotion_vector": ("PLAYMATE_EMOTION", {"tooltip":
                               "From Emotion From Text / From Audio / Schedule: replaces the emotion list."}),
            "lip_classifier": ([NO_CLASSIFIER] + _files(LIPSYNC_FOLDER), {"default": NO_CLASSIFIER, "tooltip":
                               "Lip-sync classifier from models/playmate_lipsync (needed when the scale is > 0)."}),
            "lip_guidance_scale": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100.0, "step": 0.1, "tooltip":
                                   "Strength of the lip-sync guidance on the mouth keypoints (0 = off)."}),
            "lip_guidance_mode": (LIP_MODES, {"default": "every_step", "tooltip":
                                  "every_step: classifier gradient on the noisy lips each step; difference: the "
                                  "gradient on the predicted clean lips, applied as a prediction difference."}),
        }}

    def sample(self, generator, source, audio_features, emotion, intensity, cfg_audio, cfg_emotion, steps, seed,
               pose_mode, audio_encoder=None, emotion_vector=None, lip_classifier=NO_CLASSIFIER,
               lip_guidance_scale=0.0, lip_guidance_mode="every_step"):
        gen = generator.use()
        if emotion_vector is not None:  # an estimate's weights, or a schedule as it is
            emotion = emotion_vector if isinstance(emotion_vector, EmotionSchedule) else emotion_vector.weights
        guidance = None
        if float(lip_guidance_scale) > 0:
            from playmate.motion.lip_guidance import LipGuidance
            if lip_classifier == NO_CLASSIFIER:
                raise InputError("lip_guidance_scale is > 0 but no lip_classifier is chosen: pick one from "
                                 "models/playmate_lipsync or set the scale to 0.")
            if not gen.supports_lip_guidance:
                raise InputError("Lip guidance needs a Playmate generator; %s has none: set lip_guidance_scale to 0."
                                 % gen.name)
            path = _path(LIPSYNC_FOLDER, lip_classifier)
            classifier = models.load_lip_classifier(path, device=gen.device)
            guidance = LipGuidance(classifier, lip_guidance_scale, lip_guidance_mode)
        return sample_motion(gen, source, audio_features, emotion, intensity, cfg_audio, cfg_emotion, steps, seed,
                             pose_mode, audio_encoder, lip_guidance=guidance)


NODE_CLASS_MAPPINGS = {
    "PlaymateEmotionFromText": PlaymateEmotionFromText,
    "PlaymateEmotionFromAudio": PlaymateEmotionFromAudio,
    "PlaymateEmotionSchedule": PlaymateEmotionSchedule,
    "PlaymateSampleMotionAdvanced": PlaymateSampleMotionAdvanced,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "PlaymateEmotionFromText": "Playmate Emotion From Text",
    "PlaymateEmotionFromAudio": "Playmate Emotion From Audio",
    "PlaymateEmotionSchedule": "Playmate Emotion Schedule",
    "PlaymateSampleMotionAdvanced": "Playmate Sample Motion Advanced",
}
