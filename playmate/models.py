"""Where the models come from and how they run: devices, precision, model folders, the one cache.

* Devices: :func:`resolve_device` ("auto" = CUDA when available, else the CPU).
* Precision: a LivePortrait model keeps the precision it was asked for ("auto", "fp32", "fp16"
  or "bf16") and :func:`compute_precision` turns it into the dtype it computes in on the device
  its weights are on *when it runs* (ComfyUI loads models on the offload device, the CPU, and
  moves them to the GPU for use: "auto" there is fp16, not the CPU's choice).
* Folders: the models folder is the argument, else ``$PLAYMATE_MODELS``, else ``./models``
  (:func:`models_dir`); each kind of model has its sub-folder (:data:`FOLDERS`,
  :func:`model_folder`).
* The cache: a model is identified by what it was loaded from and how -- its kind, its files
  (path, size and modification time, so a replaced file is reloaded), the precision and the
  device.  Asking twice for the same key returns the same object; the loader runs once.
  ``MODELS.loads`` counts the loader calls per key (tests use it to prove a file is read once).
  Every caller -- CLI, library and nodes -- loads through the functions below, so the same
  model file gets the same key whichever asks.
"""

import os
import threading
from collections import Counter
from pathlib import Path

import torch

from .errors import InputError

# ----------------------------------------------------------------- devices and precision
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def resolve_device(name="auto"):
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError("Unknown device %r: use auto, cpu, cuda or cuda:N." % name) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("Device %r was asked for but CUDA is not available: use --device cpu." % name)
    return device


def cpu_has_bf16():
    """Whether this CPU has native bfloat16 (AVX512-BF16 / AMX) for oneDNN's convolutions."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check_precision(precision):
    if precision not in PRECISIONS:
        raise InputError("precision must be one of %s, got %r" % (", ".join(PRECISIONS), precision))
    return precision


def compute_precision(precision, device):
    """"fp32", "bf16" or "fp16": what ``precision`` means for a model running on ``device``.

    auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.  fp16 on a CPU runs as bf16
    (CPUs have no fast float16 convolutions: measured > 10x slower).  Other devices compute in
    fp32 unless a dtype is asked for explicitly.
    """
    check_precision(precision)
    kind = torch.device(device).type
    if precision == "auto":
        if kind == "cuda":
            return "fp16"
        return "bf16" if kind == "cpu" and cpu_has_bf16() else "fp32"
    if precision == "fp16" and kind == "cpu":
        return "bf16"
    return precision


# ------------------------------------------------------------------------ folders
#: model kind -> its sub-folder of the models folder (also ComfyUI's folder names)
FOLDERS = {
    "liveportrait": "liveportrait",
    "playmate": "playmate",
    "audio_encoders": "audio_encoders",
    "mediapipe": "mediapipe",
    "ditto": "ditto",
    "text_encoders": "text_encoders",      # Emotion From Text's sentence encoder (a core ComfyUI folder too)
    "emotion": "playmate_emotion",         # emotion spaces (python -m playmate.train emotion-space)
    "lipsync": "playmate_lipsync",         # lip-sync classifiers (python -m playmate.train lip-classifier)
}


class HoldsModel:
    """For wrappers of one ``torch.nn.Module`` in ``self.model``: the device and dtype its weights are on."""

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def dtype(self):
        return next(self.model.parameters()).dtype


def models_dir(path=None):
    """The models folder: the argument, else $PLAYMATE_MODELS, else ./models."""
    return Path(path or os.environ.get("PLAYMATE_MODELS") or "models")


def model_folder(kind, models=None):
    """The sub-folder of the models folder (see :func:`models_dir`) for models of ``kind``."""
    return models_dir(models) / FOLDERS[kind]


def missing_job_files(models=None, liveportrait=False, generator=None, audio_encoder=False, face=False,
                      landmarker=None):
    """[(path, remote)] of every file a job would have to download, found without downloading or
    loading anything: LivePortrait (``liveportrait``: True for the models folder's, or a folder),
    the motion ``generator`` (a path; Ditto, JoyVASA or Playmate), the speech encoder the generator
    needs, the face landmarker (``face``; ``landmarker``: its file)."""
    from . import audio, face as face_mod
    from .liveportrait import loader
    from .motion import loading
    missing = []
    if face:
        mediapipe = None if landmarker else model_folder("mediapipe", models)
        missing += face_mod.missing_landmarker(landmarker, mediapipe)
    if liveportrait:
        folder = model_folder("liveportrait", models) if liveportrait is True else Path(liveportrait)
        missing += loader.missing_files(folder)
    if generator is not None:
        kind = loading.generator_kind(generator)
        if kind == "ditto":
            from .motion.ditto.files import missing_files
            missing += missing_files(generator)
        elif kind == "joyvasa":
            from .motion.joyvasa.files import missing_files
            missing += missing_files(generator)
        audio_encoder = audio_encoder or kind == "playmate"
    if audio_encoder:
        missing += audio.missing_encoder_files(None, models_dir(models))
    return missing


def require_job_files(**job):
    """Fail at once, with ONE message listing every missing file (file, folder, URL), when the job
    of :func:`missing_job_files` lacks files that cannot be downloaded now (offline)."""
    from .hub import require_files
    require_files(missing_job_files(**job))


# -------------------------------------------------------------------------- cache
def file_key(*paths):
    """A hashable identity of files on disk: (resolved path, size, mtime) each."""
    out = []
    for path in paths:
        path = Path(path)
        try:
            st = os.stat(path)
            out.append((str(path.resolve()), st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append((str(path), None, None))
    return tuple(out)


class ModelCache:
    def __init__(self, max_items=8):
        self.max_items = max_items
        self._items = {}
        self._lock = threading.RLock()
        self.loads = Counter()

    def get(self, key, loader):
        """Return the cached object for ``key``, calling ``loader()`` on a miss."""
        with self._lock:
            if key in self._items:
                value = self._items.pop(key)
                self._items[key] = value  # most recently used last
                return value
            value = loader()
            self.loads[key] += 1
            self._items[key] = value
            while len(self._items) > self.max_items:
                self._items.pop(next(iter(self._items)))
            return value

    def __len__(self):
        return len(self._items)

    def keys(self):
        with self._lock:
            return list(self._items)

    def clear(self):
        with self._lock:
            self._items.clear()


MODELS = ModelCache()


# ------------------------------------------------------------------------ loaders
def load_liveportrait(folder, device="cpu", precision="fp32"):
    """LivePortrait from ``folder`` (official .pth or safetensors layout), cached."""
    from .liveportrait import loader
    folder = Path(folder)
    check_precision(precision)
    key = ("liveportrait", file_key(*loader.checkpoint_paths(folder)), precision, str(device))
    return MODELS.get(key, lambda: loader.load_liveportrait(folder, device=device, precision=precision))


def load_generator(path, device="cpu", extra_roots=()):
    """A motion generator (Playmate .safetensors, the public Ditto or JoyVASA files), cached;
    ``extra_roots``: more folders searched for Ditto's files (ComfyUI's other ``ditto`` folders)."""
    from .motion import loading
    path = Path(path)
    extra_roots = tuple(str(r) for r in extra_roots)
    return MODELS.get(("generator", file_key(path), extra_roots, str(device)),
                      lambda: loading.load_generator(path, device=device, extra_roots=extra_roots))


def load_audio_encoder(name=None, models=None, device="cpu", roots=None):
    """A Wav2Vec2 :class:`playmate.audio.AudioEncoder`, cached per folder files and device.

    ``name``: a folder or a Hugging Face name (None: facebook/wav2vec2-base-960h), looked up in
    the audio-encoder folders ``roots`` (default: ``audio_encoders`` of the models folder
    ``models``, see :func:`models_dir`; ComfyUI passes every configured folder; see
    :func:`playmate.audio.load_audio_encoder`).  The key is the files of the folder found, so the
    CLI and the nodes, which find the same folder, share one copy.
    """
    from . import audio
    name = str(name or audio.DEFAULT_ENCODER)
    roots = audio.encoder_roots(models_dir(models), roots)
    folder = audio.find_encoder_folder(name, roots)
    where = (name, str(roots[0])) if folder is None else file_key(*(folder / f for f in audio.ENCODER_FILES))
    return MODELS.get(("audio_encoder", where, str(device)),
                      lambda: audio.load_audio_encoder(name, device=device, roots=roots))


def face_detector(mediapipe_dir=None, landmarker=None):
    """The default face detector (MediaPipe FaceLandmarker), cached per model file."""
    from . import face
    path = face.ensure_landmarker(landmarker, mediapipe_dir)
    return MODELS.get(("face_detector", file_key(path)), lambda: face.MediapipeFaceDetector(model_path=path))


def load_lip_classifier(path, device="cpu"):
    """A lip-sync classifier (``python -m playmate.train lip-classifier``), cached."""
    from .motion.lip_guidance import load_lip_classifier as read
    return MODELS.get(("lip_classifier", file_key(path), str(device)), lambda: read(path, device=device))


def load_emotion_space(path):
    """A trained emotion space (``python -m playmate.train emotion-space``), cached."""
    from .motion.emotion_space import load_emotion_space as read
    return MODELS.get(("emotion_space", file_key(path)), lambda: read(path))


def text_encoder(folders):
    """The sentence encoder (all-MiniLM-L6-v2) found in the text-encoder ``folders``, cached."""
    from .motion.emotion_space import load_sentence_encoder
    folders = [Path(f) for f in folders]
    return MODELS.get(("text_encoder", tuple(map(str, folders))), lambda: load_sentence_encoder(None, folders=folders))


def zero_shot_emotion(folders):
    """Zero-shot text -> emotion on :func:`text_encoder` of ``folders``, cached."""
    from .motion.emotion_space import ZeroShotTextEmotion
    folders = [Path(f) for f in folders]
    return MODELS.get(("zero_shot_emotion", tuple(map(str, folders))),
                      lambda: ZeroShotTextEmotion(text_encoder(folders)))
