"""Parts-aware lip-sync guidance: a lip-region sync classifier and classifier guidance on the lips.

Lip region: LivePortrait's lip keypoints (6, 12, 14, 17, 19, 20), x/y/z of each, i.e. the 18
expression components ``LIP_DIMS`` of the 70-d motion vector (index 3k + c).

Classifier ``LipSyncClassifier``: per-frame log-odds that the (noisy) lip motion of a window and
the audio features of the same frames are in sync::

    logits [B, N] = f(lips_t [B, N, 18], audio [B, N, A], t [B])

``lips_t`` are the lip components of ``x_t`` (diffusion time t of the cosine schedule) in the
classifier's own normalisation (``lip_mean``/``lip_std`` buffers: the expression statistics of
the data or of the generator it was trained for); ``audio`` is :meth:`reduce_audio` of the
Wav2Vec2 features (LayerNorm per layer, softmax-weighted layer sum).  Per frame: lip, audio and
their elementwise product are mixed, the timestep embedding is added, and residual temporal
convolution blocks see the neighbouring frames.  It is trained (``python -m playmate.train
lip-classifier``) with binary cross-entropy: matching windows against the same lips with audio
shifted in time or taken from another clip.

Guidance (``LipGuidance``), applied to the generator's guided noise prediction ``eps`` at each
DDIM step, on the 18 lip components only (every other component is left bit-identical)::

    every_step:  eps_lip -= scale * sqrt(1 - ab_t) * grad_{x_t} log p(sync | x_t, audio, t)
                 (classifier guidance: the score of the lip components moves by scale * grad)
    difference:  x0 = predicted clean motion; x0' = x0 + scale * grad_{x0} log p(sync | x0, audio, 0);
                 eps_lip += (eps(x0') - eps(x0)) = -sqrt(ab_t) / sqrt(1 - ab_t) * (x0' - x0)
                 (the classifier judges the clean estimate; the difference between the guided
                 and the unguided prediction is applied to eps)

``log p(sync)`` is the sum over the window's frames of ``logsigmoid(logits)``.  The two modes'
scales are not interchangeable.  Scale 0 returns ``eps`` itself (bit-identical sampling).  When
the classifier's normalisation differs from the generator's, the lips are mapped affinely
(``a * x + sqrt(ab_t) * b``, exact for the clean part of x_t; the noise is scaled by ``a``).
"""

import json
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..safeio import ModelConfig, load_model_file, save_model_file
from .compose import LIP_KEYPOINTS
from .dit import timestep_sinusoid

LIP_DIMS = tuple(3 * k + c for k in LIP_KEYPOINTS for c in range(3))
MODES = ("every_step", "difference")
FORMAT = "playmate-lip-classifier"
FORMAT_VERSION = 1


@dataclass
class LipClassifierConfig(ModelConfig):
    KIND = "lip-classifier config"

    hidden: int = 128
    blocks: int = 3
    kernel: int = 5
    audio_dim: int = 768
    audio_layers: list = field(default_factory=lambda: list(range(1, 13)))
    audio_encoder: str = "facebook/wav2vec2-base-960h"
    fps: float = 25.0
    diffusion_steps: int = 1000

    def __post_init__(self):
        self.audio_layers = [int(i) for i in self.audio_layers]
        self.fps = float(self.fps)
        if self.kernel % 2 == 0:
            raise ValueError("kernel must be odd")

    @classmethod
    def tiny(cls):
        return cls(hidden=48, blocks=2, kernel=5, audio_dim=16, audio_layers=[1, 2])


class _ConvBlock(nn.Module):
    """x + MLP(depthwise temporal conv(LayerNorm(x))), on [B, N, H]."""

    def __init__(self, width, kernel):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.conv = nn.Conv1d(width, width, kernel, padding=kernel // 2, groups=width)
        self.ff = nn.Sequential(nn.Linear(width, 2 * width), nn.SiLU(), nn.Linear(2 * width, width))

    def forward(self, x):
        h = self.conv(self.norm(x).transpose(1, 2)).transpose(1, 2)
        return x + self.ff(h)


class LipSyncClassifier(nn.Module):
    """Per-frame sync log-odds of noisy lip motion and audio (see the module docstring)."""

    def __init__(self, cfg, lip_mean=None, lip_std=None):
        super().__init__()
        self.cfg = cfg
        h, n = cfg.hidden, len(LIP_DIMS)
        self.register_buffer("lip_mean", torch.zeros(n) if lip_mean is None else torch.as_tensor(lip_mean).float())
        self.register_buffer("lip_std", torch.ones(n) if lip_std is None else torch.as_tensor(lip_std).float())
        self.layer_logits = nn.Parameter(torch.zeros(len(cfg.audio_layers)))
        self.lip_in = nn.Linear(n, h)
        self.audio_in = nn.Linear(cfg.audio_dim, h)
        self.mix = nn.Sequential(nn.Linear(3 * h, h), nn.SiLU(), nn.Linear(h, h))
        self.t_in = nn.Sequential(nn.Linear(128, h), nn.SiLU(), nn.Linear(h, h))
        self.blocks = nn.ModuleList([_ConvBlock(h, cfg.kernel) for _ in range(cfg.blocks)])
        self.out = nn.Sequential(nn.LayerNorm(h), nn.Linear(h, 1))

    def reduce_audio(self, features):
        """Wav2Vec2 features [..., L, A] -> [..., A] (LayerNorm, softmax-weighted layer sum)."""
        cfg = self.cfg
        if features.shape[-2:] != (len(cfg.audio_layers), cfg.audio_dim):
            raise InputError("Audio features have shape %s; the lip classifier needs [..., %d layers, %d] (%s layers "
                             "%s)." % (tuple(features.shape), len(cfg.audio_layers), cfg.audio_dim,
                                       cfg.audio_encoder, cfg.audio_layers))
        x = F.layer_norm(features.to(self.layer_logits), features.shape[-1:])
        return (x * torch.softmax(self.layer_logits, dim=0)[:, None]).sum(dim=-2)

    def forward(self, lips, audio, t):
        """lips [B, N, 18] (classifier normalisation), audio [B, N, A] (reduced), t [B] -> logits [B, N]."""
        h_lip, h_audio = self.lip_in(lips), self.audio_in(audio)
        x = self.mix(torch.cat([h_lip, h_audio, h_lip * h_audio], dim=-1))
        x = x + self.t_in(timestep_sinusoid(t, 128).to(x))[:, None]
        for block in self.blocks:
            x = block(x)
        return self.out(x)[..., 0]


def save_lip_classifier(path, model, info=None):
    """Write a lip classifier (safetensors + JSON metadata), atomically."""
    return save_model_file(path, model, FORMAT, FORMAT_VERSION, {"lip_dims": json.dumps(list(LIP_DIMS))}, info)


def _build_lip_classifier(meta):
    if json.loads(meta.get("lip_dims", "null")) != list(LIP_DIMS):
        raise ValueError("its lip components %s are not %s" % (meta.get("lip_dims"), list(LIP_DIMS)))
    return LipSyncClassifier(LipClassifierConfig.from_dict(json.loads(meta["config"])))


def load_lip_classifier(path, device="cpu"):
    """A :class:`LipSyncClassifier` (eval mode, no gradients on its weights) from its file."""
    return load_model_file(path, FORMAT, FORMAT_VERSION, "Lip classifier",
                           "train one with `python -m playmate.train lip-classifier`, or set the lip guidance "
                           "scale to 0.", _build_lip_classifier, device)


class LipGuidance:
    """Classifier guidance on the lip components during sampling (see the module docstring).

    Pass it to ``PlaymateGenerator.generate(..., lip_guidance=LipGuidance(classifier, scale, mode))``.
    """

    def __init__(self, classifier, scale=1.0, mode="every_step"):
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise InputError("lip guidance scale must be a number, got %r." % (scale,)) from None
        if not math.isfinite(scale) or scale < 0:
            raise InputError("lip guidance scale must be >= 0, got %r." % (scale,))
        if mode not in MODES:
            raise InputError("lip guidance mode must be one of %s, got %r." % (", ".join(MODES), mode))
        self.classifier, self.scale, self.mode = classifier, scale, mode

    def describe(self):
        """JSON-ready summary for the motion's info."""
        info = getattr(self.classifier, "info", None) or {}
        return {"scale": self.scale, "mode": self.mode, "classifier_config": self.classifier.cfg.to_dict(),
                "classifier_evaluation": info.get("evaluation")}

    def check(self, generator_cfg):
        """InputError unless the classifier fits a generator (audio features, diffusion schedule)."""
        c, g = self.classifier.cfg, generator_cfg
        if (c.audio_dim, c.audio_layers, c.diffusion_steps) != (g.audio_dim, g.audio_layers, g.diffusion_steps):
            raise InputError("The lip classifier (audio %s layers %s of dim %d, %d diffusion steps) does not fit this "
                             "generator (%s layers %s of dim %d, %d steps): train it on data prepared like the "
                             "generator's." % (c.audio_encoder, c.audio_layers, c.audio_dim, c.diffusion_steps,
                                               g.audio_encoder, g.audio_layers, g.audio_dim, g.diffusion_steps))

    def _affine(self, stats, like):
        """(a, b) mapping the generator's normalised lips onto the classifier's: a * z + b."""
        idx = list(LIP_DIMS)
        cls = self.classifier
        a = stats.exp_std[idx] / cls.lip_std.cpu()
        b = (stats.exp_mean[idx] - cls.lip_mean.cpu()) / cls.lip_std.cpu()
        return a.to(like), b.to(like)

    def log_prob_grad(self, lips, audio, t, a, b, shift):
        """grad of sum_frames log p(sync) w.r.t. ``lips`` [B, N, 18] (generator normalisation);
        the classifier sees ``a * lips + shift * b`` at timestep ``t``."""
        cls = self.classifier
        with torch.inference_mode(False), torch.enable_grad():
            x = lips.detach().clone().requires_grad_(True)
            audio = audio.detach().clone()
            tt = torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)
            logits = cls(a.clone() * x + shift * b.clone(), audio, tt)
            (grad,) = torch.autograd.grad(F.logsigmoid(logits).sum(), x)
        return grad

    def guide(self, eps, x_t, t, audio, alpha_bar, stats):
        """Guided noise prediction: eps [B, N, 70] at x_t [B, N, 70] (generator normalisation), integer
        timestep t, audio [B, N, A] (:meth:`LipSyncClassifier.reduce_audio` of the window's frames),
        alpha_bar [T] of the schedule, the generator's NormStats.  Only the lip components change."""
        if self.scale == 0:
            return eps
        cls = self.classifier
        dev = cls.lip_std.device
        idx = torch.tensor(LIP_DIMS, device=eps.device)
        ab = float(alpha_bar[int(t)])
        lips_t = x_t.index_select(-1, idx).to(dev, torch.float32)
        eps_lip = eps.index_select(-1, idx).to(dev, torch.float32)
        a, b = self._affine(stats, lips_t)
        audio = audio.to(dev, torch.float32)
        if self.mode == "every_step":
            grad = self.log_prob_grad(lips_t, audio, t, a, b, math.sqrt(ab))
            new = eps_lip - self.scale * math.sqrt(1 - ab) * grad
        else:
            x0 = (lips_t - math.sqrt(1 - ab) * eps_lip) / math.sqrt(ab)
            grad = self.log_prob_grad(x0, audio, 0, a, b, 1.0)
            new = eps_lip - math.sqrt(ab) / math.sqrt(1 - ab) * self.scale * grad
        out = eps.clone()
        out[..., idx] = new.to(eps)
        return out


@torch.no_grad()
def sync_probability(classifier, lips, audio_features, t=0):
    """Mean p(sync) of clean lip motion (classifier normalisation) [N, 18] or [B, N, 18] and Wav2Vec2
    features [(B,) N, L, A] of the same frames, as judged by ``classifier`` at timestep ``t``."""
    lips = torch.as_tensor(lips).float()
    feats = torch.as_tensor(audio_features).float()
    if lips.dim() == 2:
        lips, feats = lips[None], feats[None]
    dev = classifier.lip_std.device
    tt = torch.full((lips.shape[0],), int(t), dtype=torch.long, device=dev)
    logits = classifier(lips.to(dev), classifier.reduce_audio(feats.to(dev)), tt)
    return float(torch.sigmoid(logits).mean())
