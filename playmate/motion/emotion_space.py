"""Emotion from a label, a text prompt or a reference clip's audio, in one embedding space.

The space holds unit vectors of dimension D.  Three encoders map into it:

* label:  mixture weights over the 8 MEAD emotions ``w [..., 8]`` -> ``normalize(w @ anchors)``,
  with learned anchors ``[8, D]`` (one per emotion);
* text:   prompt -> sentence embedding (all-MiniLM-L6-v2 through ``transformers``: mean of the
  token states over the attention mask, L2-normalised, 384-d) -> MLP -> normalise;
* audio:  Wav2Vec2 features of a clip ``[n, L, A]`` (``playmate.audio``; the layers of the
  config) -> LayerNorm per layer -> softmax-weighted layer sum -> mean and standard deviation
  over the frames ``[2A]`` -> MLP -> normalise.

They are trained together (``python -m playmate.train emotion-space``) with a symmetric InfoNCE
loss on the three pairs (audio, text), (audio, label), (text, label).

Conditioning the generator.  A space vector ``z`` becomes mixture weights over the 8 emotions::

    w = softmax(cos(z, anchors) / temperature)

and the generator's emotion controller embeds those weights with its own table, exactly as it
does for a label or a mixture string (``PlaymateGenerator.generate(emotion=w)``), so intensity,
the null share and per-frame weights keep working and one space serves every stage-2
checkpoint.  The controller was trained on one-hot labels and sees their convex mixtures at
inference; mapping through the anchors keeps every space vector inside that set instead of
extrapolating with a linear map.  (The generator also accepts a raw controller embedding
``[E]``/``[N, E]``; a space vector is not one unless D == E and the controller was trained on it.)

Zero-shot text (no trained heads): ``w = softmax(cos(s(prompt), p_e) / temperature)`` where
``p_e`` is the normalised mean sentence embedding of several written descriptions of emotion e
(:data:`EMOTION_DESCRIPTIONS`).  Every estimate is an :class:`EmotionEstimate` that keeps its
scores and weights for inspection.
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, ModelFileError
from ..models import FOLDERS, HoldsModel
from ..safeio import ModelConfig, load_model_file, save_model_file
from .dit import EMOTIONS

DEFAULT_TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
TEXT_ENCODER_FOLDER = FOLDERS["text_encoders"]
TEXT_ENCODER_FILES = ("config.json", "model.safetensors")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")  # either one
DEFAULT_TEMPERATURE = 0.05
FORMAT = "playmate-emotion-space"
FORMAT_VERSION = 1

# Several plain-language descriptions per emotion; their mean embedding is the zero-shot prototype.
EMOTION_DESCRIPTIONS = {
    "neutral": ["a calm, neutral face with no particular emotion", "speaking in a flat, even, matter-of-fact tone",
                "relaxed and composed, expressionless", "an ordinary, unemotional voice", "calmly stating facts"],
    "angry": ["an angry, furious face", "shouting in rage", "irritated and mad, frowning hard",
              "hostile and aggressive, yelling", "annoyed and frustrated"],
    "contempt": ["contemptuous and scornful", "a disdainful smirk, looking down on someone",
                 "sneering with superiority and disrespect", "mocking, dismissive and condescending",
                 "arrogant and unimpressed"],
    "disgusted": ["disgusted, repulsed by something gross", "a grimace of revulsion, nose wrinkled",
                  "finding something nasty and revolting", "sickened and grossed out", "yuck, that is disgusting"],
    "fear": ["afraid and frightened", "terrified, trembling with fear", "anxious and scared, eyes wide with panic",
             "a nervous, fearful voice", "horrified and panicking"],
    "happy": ["happy and joyful, smiling broadly", "a cheerful, delighted laugh", "glad and excited, full of joy",
              "a warm, bright, happy voice", "pleased and content"],
    "sad": ["sad and unhappy, close to tears", "a sorrowful, depressed face", "grieving and heartbroken",
            "a gloomy, melancholic, low voice", "disappointed and down"],
    "surprised": ["surprised and astonished", "shocked, eyes and mouth wide open", "amazed by unexpected news",
                  "a startled gasp of astonishment", "wow, I can't believe it"],
}


# ------------------------------------------------------------ estimates
@dataclass
class EmotionEstimate:
    """Mixture weights over the 8 emotions (sum 1) and how they were obtained.

    ``weights`` [8] go straight to ``PlaymateGenerator.generate(emotion=...)``; ``scores`` [8]
    are the cosine similarities they came from (to the zero-shot prototypes or the space's
    anchors); ``vector`` [D] is the query in the emotion space (None for zero-shot text).
    """

    weights: torch.Tensor
    scores: torch.Tensor
    temperature: float
    method: str
    query: str = ""
    vector: torch.Tensor = None

    def as_dict(self):
        return {name: float(w) for name, w in zip(EMOTIONS, self.weights)}

    def top(self):
        """(name, weight) of the strongest emotion."""
        i = int(self.weights.argmax())
        return EMOTIONS[i], float(self.weights[i])

    def mixture(self, min_weight=0.005):
        """The weights as a mixture string ``"happy:0.812,surprised:0.120"`` (weights >= min_weight)."""
        order = torch.argsort(self.weights, descending=True).tolist()
        return ",".join("%s:%.3f" % (EMOTIONS[i], float(self.weights[i])) for i in order
                        if float(self.weights[i]) >= min_weight) or "%s:1" % self.top()[0]

    def summary(self):
        """One line per emotion (strongest first): weight and cosine score."""
        order = torch.argsort(self.weights, descending=True).tolist()
        head = "%s (temperature %g)%s" % (self.method, self.temperature, (": %r" % self.query) if self.query else "")
        rows = ["%-10s %.3f  (cos %.3f)" % (EMOTIONS[i], float(self.weights[i]), float(self.scores[i])) for i in order]
        return "\n".join([head] + rows)


def weights_from_scores(scores, temperature):
    """Cosine scores [..., 8] -> mixture weights softmax(scores / temperature)."""
    temperature = _temperature(temperature)
    return torch.softmax(scores.float() / temperature, dim=-1)


def _temperature(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError("temperature must be a number, got %r." % (value,)) from None
    if not math.isfinite(value) or value <= 0:
        raise InputError("temperature must be > 0 (e.g. 0.05), got %r." % (value,))
    return value


def _prompt(text):
    if not isinstance(text, str) or not text.strip():
        raise InputError("The emotion prompt is empty: describe the emotion in words, e.g. 'a big happy grin'.")
    return text.strip()


# ------------------------------------------------------- sentence encoder
class SentenceEncoder(HoldsModel):
    """A transformers sentence model used like sentence-transformers' all-MiniLM-L6-v2:
    mean of the last hidden states over the attention mask, then L2 normalisation."""

    def __init__(self, model, tokenizer, name=DEFAULT_TEXT_ENCODER, max_length=256):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self.max_length = max_length

    @property
    def dim(self):
        return int(self.model.config.hidden_size)

    def to(self, device):
        self.model.to(device)
        return self

    @torch.no_grad()
    def encode(self, texts, batch_size=64):
        """list of str -> float32 [n, dim] on the CPU, unit length."""
        if isinstance(texts, str):
            texts = [texts]
        out = []
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.device)
            hidden = self.model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"][..., None].to(hidden)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            out.append(F.normalize(pooled, dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.dim)


def text_encoder_folders(name, models_dir=None, folders=None):
    """Where a sentence encoder may live: each text-encoder folder (``folders``, then
    ``models_dir/text_encoders``) / the last part of the name (``all-MiniLM-L6-v2``, where
    downloads go), then / the full name (``sentence-transformers/all-MiniLM-L6-v2``)."""
    roots = [Path(f) for f in (folders or [])]
    if models_dir is not None:
        roots.append(Path(models_dir) / TEXT_ENCODER_FOLDER)
    out = []
    for root in roots:
        for sub in (Path(str(name)).name, str(name)):
            if root / sub not in out:
                out.append(root / sub)
    return out


def load_sentence_encoder(name_or_folder=None, models_dir=None, device="cpu", folders=None):
    """A :class:`SentenceEncoder` from a folder, the models folder, the HF cache or a download.

    Lookup order: ``name_or_folder`` as a folder (transformers files: config.json,
    model.safetensors and tokenizer.json or vocab.txt); the text-encoder folders (see
    :func:`text_encoder_folders`); the Hugging Face cache; a download when online (saved into
    the first text-encoder folder).  Offline and nowhere found: :class:`ModelFileError` naming
    the folder.  ``None`` means sentence-transformers/all-MiniLM-L6-v2.
    """
    from ..hub import offline
    name = str(name_or_folder or DEFAULT_TEXT_ENCODER)
    candidates = [Path(name)] if Path(name).is_dir() else []
    candidates += text_encoder_folders(name, models_dir, folders)
    for folder in candidates:
        if folder.is_dir():
            missing = [f for f in TEXT_ENCODER_FILES if not (folder / f).is_file()]
            if not any((folder / f).is_file() for f in TOKENIZER_FILES):
                missing.append(" or ".join(TOKENIZER_FILES))
            if missing:
                raise ModelFileError("Text encoder folder '%s' lacks %s: put the transformers files of %s there "
                                     "(from https://huggingface.co/%s)." % (folder, ", ".join(missing), name,
                                                                          DEFAULT_TEXT_ENCODER))
            return _load_text(folder, name, device, local_files_only=True)
    if Path(name).is_absolute() or name.startswith("."):
        raise ModelFileError("Text encoder folder '%s' does not exist." % name)
    try:  # the Hugging Face cache
        return _load_text(name, name, device, local_files_only=True)
    except ModelFileError:
        pass
    targets = text_encoder_folders(name, models_dir, folders)
    where = ("the folder '%s'" % targets[0]) if targets else "a folder passed as the text encoder"
    if offline():
        raise ModelFileError("Missing text encoder %s: put its transformers files (%s, tokenizer.json) in %s "
                             "(download from https://huggingface.co/%s)."
                             % (name, ", ".join(TEXT_ENCODER_FILES), where, name))
    encoder = _load_text(name, name, device, local_files_only=False)
    if targets:
        _save_text(encoder, targets[0])
    return encoder


def _load_text(source, name, device, local_files_only):
    from transformers import AutoModel, AutoTokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=local_files_only)
        model = AutoModel.from_pretrained(str(source), local_files_only=local_files_only, use_safetensors=True)
    except Exception as exc:
        raise ModelFileError("Could not load the text encoder %s from %s: %s. Put its transformers files in "
                             "models/%s/%s." % (name, source, str(exc).splitlines()[0] if str(exc) else
                                                type(exc).__name__, TEXT_ENCODER_FOLDER, Path(name).name)) from None
    return SentenceEncoder(model.to(device), tokenizer, name=name)


def _save_text(encoder, folder):
    """Write a downloaded encoder into the models folder (temporary folder, then rename)."""
    import shutil
    folder = Path(folder)
    tmp = folder.with_name("." + folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    encoder.model.save_pretrained(str(tmp))
    encoder.tokenizer.save_pretrained(str(tmp))
    if not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(folder)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------- zero-shot
class ZeroShotTextEmotion:
    """Prompt -> emotion weights without trained heads (cosine to description prototypes)."""

    def __init__(self, encoder, descriptions=None):
        descriptions = descriptions or EMOTION_DESCRIPTIONS
        missing = [e for e in EMOTIONS if not descriptions.get(e)]
        if missing:
            raise InputError("Emotion descriptions are missing for %s." % ", ".join(missing))
        self.encoder = encoder
        self.descriptions = {e: list(descriptions[e]) for e in EMOTIONS}
        texts = [t for e in EMOTIONS for t in self.descriptions[e]]
        emb = encoder.encode(texts)
        counts = torch.tensor([len(self.descriptions[e]) for e in EMOTIONS])
        owner = torch.repeat_interleave(torch.arange(len(EMOTIONS)), counts)
        sums = torch.zeros(len(EMOTIONS), emb.shape[1]).index_add_(0, owner, emb)
        self.prototypes = F.normalize(sums / counts[:, None], dim=-1)   # [8, dim]

    def scores(self, prompts):
        """Cosine similarities [n, 8] of prompts to the emotion prototypes."""
        return self.encoder.encode(prompts) @ self.prototypes.T

    def __call__(self, prompt, temperature=DEFAULT_TEMPERATURE):
        prompt = _prompt(prompt)
        scores = self.scores([prompt])[0]
        return EmotionEstimate(weights_from_scores(scores, temperature), scores, _temperature(temperature),
                               "zero-shot text", prompt)


# --------------------------------------------------------- trained space
@dataclass
class EmotionSpaceConfig(ModelConfig):
    KIND = "emotion-space config"

    dim: int = 64                       # D of the space
    hidden: int = 256                   # width of the projection heads
    text_dim: int = 384                 # sentence embedding size
    text_encoder: str = DEFAULT_TEXT_ENCODER
    audio_dim: int = 768
    audio_layers: list = field(default_factory=lambda: list(range(1, 13)))  # hidden_states indices
    audio_encoder: str = "facebook/wav2vec2-base-960h"
    fps: float = 25.0                   # frame rate of the audio features it was trained on

    def __post_init__(self):
        self.audio_layers = [int(i) for i in self.audio_layers]
        self.fps = float(self.fps)
        if self.dim < 2 or self.hidden < 1:
            raise ValueError("dim must be >= 2 and hidden >= 1")

    @classmethod
    def tiny(cls):
        """Small heads for tests (16-d audio features of 2 layers)."""
        return cls(dim=16, hidden=64, audio_dim=16, audio_layers=[1, 2])


def _mlp(d_in, width, d_out):
    return nn.Sequential(nn.Linear(d_in, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                         nn.Linear(width, d_out))


class EmotionSpace(nn.Module):
    """Projection heads of labels, sentence embeddings and pooled audio into one unit sphere."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.anchors = nn.Parameter(torch.randn(len(EMOTIONS), cfg.dim) / math.sqrt(cfg.dim))
        self.text_head = _mlp(cfg.text_dim, cfg.hidden, cfg.dim)
        self.layer_logits = nn.Parameter(torch.zeros(len(cfg.audio_layers)))
        self.audio_head = _mlp(2 * cfg.audio_dim, cfg.hidden, cfg.dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # InfoNCE temperature (training)

    def embed_labels(self, weights):
        """Emotion weights [..., 8] (one-hot or a mixture) -> unit vectors [..., D]."""
        return F.normalize(weights.to(self.anchors) @ self.anchors, dim=-1)

    def embed_text(self, sentence_embeddings):
        """Sentence embeddings [..., text_dim] -> unit vectors [..., D]."""
        return F.normalize(self.text_head(sentence_embeddings.to(self.anchors)), dim=-1)

    def pool_audio(self, features, mask=None):
        """Wav2Vec2 features [B, n, L, A] (mask [B, n], True = frame present) -> [B, 2A]:
        mean and standard deviation over the frames of the layer-weighted LayerNormed features."""
        if features.shape[-2:] != (len(self.cfg.audio_layers), self.cfg.audio_dim):
            raise InputError("Audio features have shape %s; this emotion space needs [..., %d layers, %d] (%s "
                             "layers %s)." % (tuple(features.shape), len(self.cfg.audio_layers), self.cfg.audio_dim,
                                              self.cfg.audio_encoder, self.cfg.audio_layers))
        x = F.layer_norm(features.to(self.anchors), features.shape[-1:])
        x = (x * torch.softmax(self.layer_logits, dim=0)[:, None]).sum(dim=-2)   # [B, n, A]
        m = torch.ones(x.shape[:2], dtype=x.dtype, device=x.device) if mask is None else mask.to(x)
        count = m.sum(dim=1, keepdim=True).clamp(min=1)
        mean = (x * m[..., None]).sum(dim=1) / count
        var = (((x - mean[:, None]) ** 2) * m[..., None]).sum(dim=1) / count
        return torch.cat([mean, (var + 1e-6).sqrt()], dim=-1)

    def embed_audio(self, features, mask=None):
        """Wav2Vec2 features [B, n, L, A] -> unit vectors [B, D]."""
        return F.normalize(self.audio_head(self.pool_audio(features, mask)), dim=-1)

    def anchor_scores(self, vectors):
        """Cosine similarities [..., 8] of space vectors to the emotion anchors."""
        return F.normalize(vectors.to(self.anchors), dim=-1) @ F.normalize(self.anchors, dim=-1).T

    # ------------------------------------------------------- estimates
    @torch.no_grad()
    def estimate(self, vector, temperature=DEFAULT_TEMPERATURE, method="emotion space", query=""):
        """A space vector [D] -> :class:`EmotionEstimate` (softmax of anchor cosines / temperature)."""
        vector = F.normalize(vector.detach().float().reshape(-1).to(self.anchors), dim=-1)
        scores = self.anchor_scores(vector).float().cpu()
        return EmotionEstimate(weights_from_scores(scores, temperature), scores, _temperature(temperature), method,
                               query, vector.float().cpu())

    @torch.no_grad()
    def from_text(self, encoder, prompt, temperature=DEFAULT_TEMPERATURE):
        """Prompt -> :class:`EmotionEstimate` through the trained text head."""
        prompt = _prompt(prompt)
        if encoder.dim != self.cfg.text_dim:
            raise InputError("The text encoder %s gives %d-d embeddings; this emotion space was trained on %s "
                             "(%d-d)." % (encoder.name, encoder.dim, self.cfg.text_encoder, self.cfg.text_dim))
        return self.estimate(self.embed_text(encoder.encode([prompt]))[0], temperature, "emotion space: text", prompt)

    @torch.no_grad()
    def from_audio(self, features=None, audio_16k=None, encoder=None, temperature=DEFAULT_TEMPERATURE,
                   name="reference audio"):
        """A reference clip -> :class:`EmotionEstimate` through the trained audio head.

        Give Wav2Vec2 ``features`` [n, L, A] (the config's layers, any frame rate), or mono
        16 kHz ``audio_16k`` [T] with an :class:`playmate.audio.AudioEncoder`.
        """
        cfg = self.cfg
        if features is None:
            if audio_16k is None or encoder is None:
                raise InputError("Emotion from audio needs the reference clip's features, or its audio and an "
                                 "audio encoder (%s)." % cfg.audio_encoder)
            if encoder.dim != cfg.audio_dim or max(cfg.audio_layers) > encoder.num_layers:
                raise InputError("The audio encoder %s (%d layers of %d) does not fit this emotion space, trained "
                                 "on %s (layers %s of dim %d)." % (encoder.name, encoder.num_layers, encoder.dim,
                                                                   cfg.audio_encoder, cfg.audio_layers,
                                                                   cfg.audio_dim))
            from ..audio import SAMPLE_RATE, num_frames
            if num_frames(torch.as_tensor(audio_16k).numel(), SAMPLE_RATE, cfg.fps) < 1:
                raise InputError("The %s is shorter than one frame." % name)
            features = encoder.encode(audio_16k, fps=cfg.fps, layers=cfg.audio_layers)
        features = torch.as_tensor(features).float()
        if features.dim() != 3 or features.shape[0] < 1:
            raise InputError("The %s features must be [frames, layers, dim], got %s." % (name, tuple(features.shape)))
        if not torch.isfinite(features).all():
            raise InputError("The %s features contain NaN or infinite values." % name)
        return self.estimate(self.embed_audio(features[None])[0], temperature, "emotion space: audio", name)


def save_emotion_space(path, model, info=None):
    """Write an emotion space (safetensors + JSON metadata), atomically."""
    return save_model_file(path, model, FORMAT, FORMAT_VERSION, {"emotions": json.dumps(list(EMOTIONS))}, info)


def _build_emotion_space(meta):
    cfg = EmotionSpaceConfig.from_dict(json.loads(meta["config"]))
    if json.loads(meta.get("emotions", json.dumps(list(EMOTIONS)))) != list(EMOTIONS):
        raise ValueError("emotion list differs from %s" % (EMOTIONS,))
    return EmotionSpace(cfg)


def load_emotion_space(path, device="cpu"):
    """An :class:`EmotionSpace` (eval mode, no gradients) from its file; ModelFileError if unusable."""
    return load_model_file(path, FORMAT, FORMAT_VERSION, "Emotion space",
                           "train one with `python -m playmate.train emotion-space` or choose the zero-shot mode.",
                           _build_emotion_space, device)
