"""Loader nodes: LivePortrait, motion generator, audio encoder.

Loaders return handles; the weights are loaded once per (files, precision, device)
through the library's loaders (playmate.models: the same cache entries the CLI and the
library use), whichever node asks, and are moved to the GPU through ComfyUI's model
management only when a node uses them.  The precision is chosen where the model runs:
"auto" is fp16 once the weights are on a CUDA device, whatever device they were loaded on.
"""

from playmate import models
from playmate.audio import DEFAULT_ENCODER

from . import comfy_bridge as cb

PRECISIONS = list(models.PRECISIONS)
JOYVASA_CHOICE = "joyvasa (public, auto-download)"
DITTO_CHOICE = "ditto (public, auto-download)"


class LivePortraitHandle:
    """PLAYMATE_LIVEPORTRAIT: the LivePortrait networks, managed for VRAM."""

    def __init__(self, folder, precision):
        self.folder = folder
        self.precision = precision
        self._managed = None

    def _load(self):
        return cb.managed(models.load_liveportrait(self.folder, device=cb.offload_device(), precision=self.precision))

    def use(self):
        """The networks on the compute device (loaded on first use, shared by every node)."""
        return self._load().use()


class GeneratorHandle:
    """PLAYMATE_GENERATOR: a motion generator (Ditto, Playmate or JoyVASA)."""

    def __init__(self, path, extra_roots=()):
        self.path = path
        self.extra_roots = tuple(extra_roots)

    def _load(self):
        return cb.managed(models.load_generator(self.path, device=cb.offload_device(), extra_roots=self.extra_roots))

    def use(self):
        return self._load().use()


class AudioEncoderHandle:
    """PLAYMATE_AUDIO_ENCODER: a transformers Wav2Vec2 model."""

    def __init__(self, name):
        self.name = name

    def use(self):
        """The encoder from any configured audio_encoders folder (extra_model_paths.yaml included), else
        the HF cache or a download into the default folder."""
        encoder = models.load_audio_encoder(self.name, models=cb.models_root(), device=cb.offload_device(),
                                            roots=cb.folder_paths_for("audio_encoders"))
        return cb.managed(encoder).use()


class PlaymateLoadLivePortrait:
    DESCRIPTION = ("Loads LivePortrait (appearance, motion, warping, decoder, stitching/eye/lip MLPs) from "
                   "models/liveportrait. Accepts the official .pth files and their safetensors conversion; "
                   "missing files are downloaded from Hugging Face when online.")
    CATEGORY = "Playmate/Loaders"
    FUNCTION = "load"
    RETURN_TYPES = ("PLAYMATE_LIVEPORTRAIT",)
    RETURN_NAMES = ("liveportrait",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "precision": (PRECISIONS, {"default": "auto", "tooltip":
                          "auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32 (chosen where the model runs). "
                          "fp16/bf16 render faster with a small error."}),
        }}

    def load(self, precision):
        return (LivePortraitHandle(cb.folder_with("liveportrait", "**/warping_module.*"), precision),)


class PlaymateLoadMotionGenerator:
    DESCRIPTION = ("Loads an audio-to-motion generator: the public Ditto model (8 emotions; downloaded into "
                   "models/ditto on first use), the public JoyVASA model (no emotion control), or a Playmate "
                   "checkpoint from models/playmate (.safetensors, emotion control).")
    CATEGORY = "Playmate/Loaders"
    FUNCTION = "load"
    RETURN_TYPES = ("PLAYMATE_GENERATOR",)
    RETURN_NAMES = ("generator",)

    @classmethod
    def INPUT_TYPES(cls):
        files = [f for f in cb.list_files("playmate", {".safetensors"}) if not f.startswith("joyvasa/")]
        return {"required": {
            "generator": ([DITTO_CHOICE, JOYVASA_CHOICE] + files, {"default": DITTO_CHOICE, "tooltip":
                          "Ditto (emotion control) is downloaded to models/ditto, JoyVASA to models/playmate/joyvasa; "
                          "or a Playmate checkpoint in models/playmate."}),
        }}

    def load(self, generator):
        if generator == DITTO_CHOICE:
            roots = cb.folder_paths_for("ditto")
            return (GeneratorHandle(roots[0], extra_roots=roots[1:]),)
        if generator == JOYVASA_CHOICE:
            return (GeneratorHandle(cb.default_folder("playmate") / "joyvasa"),)
        return (GeneratorHandle(cb.find_file("playmate", generator)),)


class PlaymateLoadAudioEncoder:
    DESCRIPTION = ("Loads a Wav2Vec2 speech encoder (transformers format) from models/audio_encoders, "
                   "downloading facebook/wav2vec2-base-960h when online.")
    CATEGORY = "Playmate/Loaders"
    FUNCTION = "load"
    RETURN_TYPES = ("PLAYMATE_AUDIO_ENCODER",)
    RETURN_NAMES = ("audio_encoder",)

    @classmethod
    def INPUT_TYPES(cls):
        folders = []
        for root in cb.folder_paths_for("audio_encoders"):
            if root.is_dir():
                folders += sorted(p.parent.relative_to(root).as_posix() for p in root.glob("**/config.json"))
        choices = [DEFAULT_ENCODER] + [f for f in folders if f != DEFAULT_ENCODER]
        return {"required": {
            "encoder": (choices, {"tooltip": "A transformers Wav2Vec2 folder (config.json + weights)."}),
        }}

    def load(self, encoder):
        return (AudioEncoderHandle(encoder),)


NODE_CLASS_MAPPINGS = {
    "PlaymateLoadLivePortrait": PlaymateLoadLivePortrait,
    "PlaymateLoadMotionGenerator": PlaymateLoadMotionGenerator,
    "PlaymateLoadAudioEncoder": PlaymateLoadAudioEncoder,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "PlaymateLoadLivePortrait": "Playmate Load LivePortrait",
    "PlaymateLoadMotionGenerator": "Playmate Load Motion Generator",
    "PlaymateLoadAudioEncoder": "Playmate Load Audio Encoder",
}
