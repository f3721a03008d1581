"""Playmate All-In-One: IMAGE + AUDIO + emotion -> IMAGE + AUDIO + fps, for beginners.

It runs exactly the node chain Load LivePortrait -> Source Face -> Audio Features ->
Sample Motion -> Render, so both give the same frames for the same seed.
"""

from playmate.audio import DEFAULT_ENCODER
from playmate.face import DEFAULT_SCALE, DEFAULT_VX, DEFAULT_VY

from .audio_nodes import PlaymateAudioFeatures
from .inputs import image_frames, required_audio
from .loaders import PRECISIONS, PlaymateLoadAudioEncoder, PlaymateLoadLivePortrait, PlaymateLoadMotionGenerator
from .motion_nodes import PlaymateSampleMotion
from .render import PlaymateRender
from .source import PlaymateSource


class Playmate:
    DESCRIPTION = ("One node from a portrait and speech to a talking-head video: finds the face, samples motion "
                   "from the audio with the chosen emotion, renders and pastes back. Outputs frames, the audio "
                   "fitted to them and the fps for Create Video / Video Combine.")
    CATEGORY = "Playmate/All-In-One"
    FUNCTION = "animate"
    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT")
    RETURN_NAMES = ("images", "audio", "fps")

    @classmethod
    def INPUT_TYPES(cls):
        sample = PlaymateSampleMotion.INPUT_TYPES()["required"]
        return {"required": {
            "image": ("IMAGE", {"tooltip": "The portrait to animate."}),
            "audio": ("AUDIO", {"tooltip": "Speech."}),
            "generator": PlaymateLoadMotionGenerator.INPUT_TYPES()["required"]["generator"],
            "emotion": sample["emotion"],
            "intensity": sample["intensity"],
            "cfg_audio": sample["cfg_audio"],
            "cfg_emotion": sample["cfg_emotion"],
            "steps": sample["steps"],
            "seed": sample["seed"],
            "pose_mode": sample["pose_mode"],
            "fps": PlaymateAudioFeatures.INPUT_TYPES()["required"]["fps"],
            "paste_back": ("BOOLEAN", {"default": True, "tooltip": "Full picture (True) or 512x512 face crops."}),
            "precision": (PRECISIONS, {"default": "auto", "tooltip":
                          "Render precision (auto: fp16 on CUDA, see Load LivePortrait)."}),
        }, "optional": {
            "face_index": ("INT", {"default": 0, "min": 0, "max": 63, "tooltip": "Which face (largest first)."}),
        }}

    def animate(self, image, audio, generator, emotion, intensity, cfg_audio, cfg_emotion, steps, seed, pose_mode,
                fps, paste_back, precision, face_index=0):
        node = "Playmate All-In-One"  # cheap input checks before any model loads
        image_frames(image, node, "image", "connect a portrait (Load Image)")
        required_audio(audio, node, "audio", "connect the speech from Load Audio instead (a video's audio only when "
                       "it has sound)")
        (lp,) = PlaymateLoadLivePortrait().load(precision)
        (gen,) = PlaymateLoadMotionGenerator().load(generator)
        encoder = None
        if getattr(gen.use(), "needs_audio_encoder", False):
            (encoder,) = PlaymateLoadAudioEncoder().load(DEFAULT_ENCODER)
        source, _, _ = PlaymateSource().prepare(lp, image, face_index, "largest", DEFAULT_SCALE, DEFAULT_VX,
                                             DEFAULT_VY)
        clip, _, _ = PlaymateAudioFeatures().prepare(audio, fps, audio_encoder=encoder)
        motion, _, _ = PlaymateSampleMotion().sample(gen, source, clip, emotion, intensity, cfg_audio, cfg_emotion,
                                                     steps, seed, pose_mode)
        return PlaymateRender().render(lp, source, motion, True, paste_back, 8, audio=audio)


NODE_CLASS_MAPPINGS = {"Playmate": Playmate}
NODE_DISPLAY_NAME_MAPPINGS = {"Playmate": "Playmate All-In-One"}
