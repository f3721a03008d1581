"""Playmate's motion denoiser: a Conformer trunk (stage 1) and an emotion controller (stage 2).

Token layout of one window (S = P + N tokens, P previous frames then N current frames)::

    token_j = motion_j + audio_j + pos_j
      motion_j = prev_in(previous motion)  for the P previous frames (learned start tokens when
                 there are none: the first window, or dropped in training)
               = motion_in(x_t)            for the N noisy current frames
      audio_j  = audio token of frame j: softmax-weighted sum of the LayerNormed Wav2Vec2
                 layers -> MLP (a learned null token replaces it for classifier-free guidance)
      pos_j    = learned position embedding

Audio is added per frame; self-attention over the joint [previous | current] sequence aligns
audio and motion and carries the previous frames into the window, the depthwise convolution
of each Conformer block smooths across the boundary.  Every block is modulated (AdaLN-zero)
by ``c = timestep embedding + identity embedding``; the identity comes from the source's
canonical keypoints x_c, expression and pose (see ``normalization.NormStats.identity``).

Noise prediction with a fixed skip (preconditioning, in the spirit of EDM): the heads' output
F is turned into ``eps_hat = sqrt(1 - alpha_bar_t) * x_t + sqrt(alpha_bar_t) * F``.  The network
still predicts the noise and is trained with the paper's ||eps - eps_hat||^2, but at high noise
eps_hat ~ x_t holds by construction, so x_0 = (x_t - sqrt(1 - ab) eps_hat) / sqrt(ab)
= sqrt(ab) x_t - sqrt(1 - ab) F never divides a network error by sqrt(ab) ~ 0 (without it a
DDIM chain locks in the garbage x_0 of its first, noisiest steps unless the network is
nearly perfect there).

Heads (for the N current frames, 70-d layout of ``normalization``):
``pose_head`` -> 7 (scale, t, pitch, yaw, roll) from the trunk output;
``exp_head``  -> 63 from the trunk output, or in stage 2 from ``h + gate * EmotionController(h)``.
The emotion controller is 2 DiT blocks conditioned on ``timestep + emotion embedding`` (per
frame) with a zero-initialised output projection, so an untrained controller, a gate of 0 or
no emotion at all leave the stage-1 prediction exactly unchanged.
"""

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..safeio import ModelConfig
from .emotion import EMOTIONS
from .normalization import EXP_DIM, IDENTITY_DIM, MOTION_DIM, POSE_DIM


@dataclass
class PlaymateConfig(ModelConfig):
    width: int = 512
    depth: int = 8
    heads: int = 8
    conv_kernel: int = 15
    ffn_mult: int = 4
    window: int = 100            # N frames generated per window
    prev: int = 10               # P previous frames conditioning each window
    crossfade: int = 10          # frames blended between consecutive windows
    fps: float = 25.0
    audio_dim: int = 768
    audio_layers: list = field(default_factory=lambda: list(range(1, 13)))  # hidden_states indices
    audio_encoder: str = "facebook/wav2vec2-base-960h"
    emotion_dim: int = 64        # E: the emotion condition is a vector in R^E
    emotion_blocks: int = 2
    diffusion_steps: int = 1000  # training steps T of the cosine schedule
    prev_noise: float = 0.1      # max std of the noise added to the previous frames in training

    def __post_init__(self):
        self.audio_layers = [int(i) for i in self.audio_layers]
        self.fps = float(self.fps)
        if self.width % self.heads:
            raise ValueError("width %d is not divisible by heads %d" % (self.width, self.heads))
        if self.conv_kernel % 2 == 0:
            raise ValueError("conv_kernel must be odd")
        if not (0 <= self.crossfade and self.prev + 2 * self.crossfade < self.window):
            raise ValueError("need prev + 2*crossfade < window")
        if self.emotion_dim in (len(EMOTIONS), len(EMOTIONS) + 1):
            raise ValueError("emotion_dim 8 or 9 would be mistaken for emotion weights")

    @classmethod
    def full(cls):
        """The default size (~50 M parameters in stage 1)."""
        return cls()

    @classmethod
    def tiny(cls):
        """A small model for tests and CPU experiments (16-d audio features, 2 layers)."""
        return cls(width=64, depth=2, heads=4, conv_kernel=5, ffn_mult=2, window=24, prev=4,
                   crossfade=4, audio_dim=16, audio_layers=[1, 2], emotion_dim=16)


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


def timestep_sinusoid(t, dim):
    """Sinusoidal embedding of timesteps t [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x):
        b, s, w = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, s, w))


class ConvModule(nn.Module):
    """Conformer convolution: pointwise -> GLU -> depthwise conv -> LayerNorm -> SiLU -> pointwise."""

    def __init__(self, width, kernel):
        super().__init__()
        self.pw1 = nn.Linear(width, 2 * width)
        self.dw = nn.Conv1d(width, width, kernel, padding=kernel // 2, groups=width)
        self.norm = nn.LayerNorm(width)
        self.pw2 = nn.Linear(width, width)

    def forward(self, x):
        x = F.glu(self.pw1(x), dim=-1)
        x = self.dw(x.transpose(1, 2)).transpose(1, 2)
        return self.pw2(F.silu(self.norm(x)))


class FeedForward(nn.Sequential):
    def __init__(self, width, mult):
        super().__init__(nn.Linear(width, mult * width), nn.GELU(), nn.Linear(mult * width, width))


class AdaLNBlock(nn.Module):
    """Residual sub-layers, each as ``x + gate * f(modulate(LN(x), shift, scale))`` (AdaLN-zero)."""

    def __init__(self, width, sublayers):
        super().__init__()
        self.sublayers = nn.ModuleList(sublayers)
        self.ada = nn.Linear(width, 3 * len(sublayers) * width)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x, c):
        """x [B,S,W]; c [B,W] or per token [B,S,W]."""
        mods = self.ada(F.silu(c))
        if mods.dim() == 2:
            mods = mods[:, None]
        mods = mods.chunk(3 * len(self.sublayers), dim=-1)
        for i, layer in enumerate(self.sublayers):
            shift, scale, gate = mods[3 * i: 3 * i + 3]
            h = modulate(F.layer_norm(x, x.shape[-1:], eps=1e-6), shift, scale)
            x = x + gate * layer(h)
        return x


def conformer_block(cfg):
    return AdaLNBlock(cfg.width, [SelfAttention(cfg.width, cfg.heads), ConvModule(cfg.width, cfg.conv_kernel),
                                  FeedForward(cfg.width, cfg.ffn_mult)])


def dit_block(cfg):
    return AdaLNBlock(cfg.width, [SelfAttention(cfg.width, cfg.heads), FeedForward(cfg.width, cfg.ffn_mult)])


def mlp(d_in, width, d_out):
    return nn.Sequential(nn.Linear(d_in, width), nn.SiLU(), nn.Linear(width, d_out))


class EmotionController(nn.Module):
    """Stage 2: h -> h + gate * out(DiT blocks(h | timestep + emotion)), out zero-initialised."""

    def __init__(self, cfg):
        super().__init__()
        self.table = nn.Parameter(torch.randn(len(EMOTIONS), cfg.emotion_dim))
        self.emo_in = mlp(cfg.emotion_dim, cfg.width, cfg.width)
        self.blocks = nn.ModuleList([dit_block(cfg) for _ in range(cfg.emotion_blocks)])
        self.out = nn.Linear(cfg.width, cfg.width)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def embed(self, weights):
        """Weights over the 8 emotions [..., 8] -> emotion vectors [..., E]."""
        return weights @ self.table

    def forward(self, h, t_emb, emotion, gate):
        """h [B,S,W]; t_emb [B,W]; emotion [B,S,E]; gate [B,S] (0 = stage 1 exactly)."""
        c = t_emb[:, None] + self.emo_in(emotion)
        x = h
        for block in self.blocks:
            x = block(x, c)
        return h + gate[..., None] * self.out(x)


class PlaymateDiT(nn.Module):
    """Noise predictor eps(x_t, t | audio, previous frames, identity[, emotion]) for one window."""

    def __init__(self, cfg, with_emotion=True):
        super().__init__()
        self.cfg = cfg
        w, s = cfg.width, cfg.prev + cfg.window
        self.motion_in = nn.Linear(MOTION_DIM, w)
        self.prev_in = nn.Linear(MOTION_DIM, w)
        self.start_prev = nn.Parameter(torch.randn(cfg.prev, w) * 0.02)
        self.pos = nn.Parameter(torch.randn(s, w) * 0.02)
        self.layer_logits = nn.Parameter(torch.zeros(len(cfg.audio_layers)))
        self.audio_proj = mlp(cfg.audio_dim, w, w)
        self.null_audio = nn.Parameter(torch.randn(w) * 0.02)
        self.id_in = mlp(IDENTITY_DIM, w, w)
        self.t_in = mlp(256, w, w)
        self.blocks = nn.ModuleList([conformer_block(cfg) for _ in range(cfg.depth)])
        self.final_ada = nn.Linear(w, 2 * w)
        nn.init.zeros_(self.final_ada.weight)
        nn.init.zeros_(self.final_ada.bias)
        self.pose_head = mlp(w, w, POSE_DIM)
        self.exp_head = mlp(w, w, EXP_DIM)
        self.emotion = EmotionController(cfg) if with_emotion else None
        from .diffusion import cosine_alpha_bar
        self.register_buffer("alpha_bar", cosine_alpha_bar(cfg.diffusion_steps).float(), persistent=False)

    # --------------------------------------------------------- conditions
    def audio_tokens(self, features):
        """Wav2Vec2 features [..., n, L, D] -> audio tokens [..., n, W]."""
        cfg = self.cfg
        if features.shape[-2:] != (len(cfg.audio_layers), cfg.audio_dim):
            raise ValueError("audio features have shape %s, this generator needs [..., %d layers, %d]"
                             % (tuple(features.shape), len(cfg.audio_layers), cfg.audio_dim))
        weights = torch.softmax(self.layer_logits, dim=0).to(features.dtype)
        x = F.layer_norm(features, features.shape[-1:])
        return self.audio_proj((x * weights[:, None]).sum(dim=-2))

    def with_null_audio(self, audio, drop):
        """Replace the audio tokens [B,S,W] of the items where ``drop`` [B] is True by the null token."""
        return torch.where(drop[:, None, None], self.null_audio.to(audio).expand_as(audio), audio)

    def conditions(self, t, identity):
        """(c [B,W] for the trunk's AdaLN, timestep embedding [B,W])."""
        t_emb = self.t_in(timestep_sinusoid(t, 256))
        return t_emb + self.id_in(identity), t_emb

    # -------------------------------------------------------------- trunk
    def trunk(self, x_t, audio, prev, has_prev, c):
        """Trunk output h [B,S,W] (S = P + N).

        x_t [B,N,70]; audio tokens [B,S,W]; prev [B,P,70] (normalised).  Where ``has_prev`` [B]
        is False the P previous positions get the learned start tokens and the null audio token.
        c [B,W].
        """
        p, keep = self.cfg.prev, has_prev[:, None, None]
        prev_tok = torch.where(keep, self.prev_in(prev), self.start_prev.to(x_t).expand(x_t.shape[0], -1, -1))
        prev_audio = torch.where(keep, audio[:, :p], self.null_audio.to(audio).expand_as(audio[:, :p]))
        x = torch.cat([prev_tok, self.motion_in(x_t)], dim=1) + torch.cat([prev_audio, audio[:, p:]], dim=1) + self.pos
        for block in self.blocks:
            x = block(x, c)
        return x

    def _final(self, h, c):
        shift, scale = self.final_ada(F.silu(c))[:, None].chunk(2, dim=-1)
        return modulate(F.layer_norm(h, h.shape[-1:], eps=1e-6), shift, scale)

    def precondition(self, out, x_t, t):
        """Heads' output F [B,N,70] -> eps_hat = sqrt(1 - ab_t) x_t + sqrt(ab_t) F (t [B])."""
        ab = self.alpha_bar[t].to(out.dtype).reshape(-1, 1, 1)
        return (1 - ab).sqrt() * x_t + ab.sqrt() * out

    def heads(self, h, h_exp, c, x_t, t):
        """eps [B,N,70] of the current frames from the trunk output (pose) and the exp input."""
        p = self.cfg.prev
        exp = self.exp_head(self._final(h_exp, c)[:, p:])
        pose = self.pose_head(self._final(h, c)[:, p:])
        return self.precondition(torch.cat([exp, pose], dim=-1), x_t, t)

    def forward(self, x_t, t, audio, prev, has_prev, identity, emotion=None, gate=None):
        """Training forward: eps prediction [B,N,70].

        ``emotion`` [B,S,E] and ``gate`` [B,S] switch on the stage-2 controller (Exp head only).
        """
        c, t_emb = self.conditions(t, identity)
        h = self.trunk(x_t, audio, prev, has_prev, c)
        h_exp = h if emotion is None else self.emotion(h, t_emb, emotion, gate)
        return self.heads(h, h_exp, c, x_t, t)

    # ---------------------------------------------------------- sampling
    def guided_eps(self, x_t, t, audio, prev, has_prev, identity, w_a, w_e, emotion=None, gate=None):
        """Nested-CFG noise prediction for a batch-1 window.

        One trunk pass on the batch [null audio, audio] (the trunk does not see the emotion);
        the emotion branch e(a,e) reuses the audio trunk output through the controller, and the
        three Exp-head inputs run as one batch.  ``emotion`` None drops the emotion term.
        """
        from .diffusion import nested_cfg
        tt = torch.full((2,), t, device=x_t.device, dtype=torch.long)
        audio2 = torch.cat([self.null_audio.to(audio).expand_as(audio), audio])
        c, t_emb = self.conditions(tt, identity.expand(2, -1))
        h = self.trunk(x_t.expand(2, -1, -1), audio2, prev.expand(2, -1, -1), has_prev.expand(2), c)
        x2 = x_t.expand(2, -1, -1)
        if emotion is None:
            e00, ea0 = self.heads(h, h, c, x2, tt).unbind(0)
            return nested_cfg(e00, ea0, None, w_a, w_e)[None]
        h_emo = self.emotion(h[1:], t_emb[1:], emotion, gate)
        c3 = torch.cat([c, c[1:]])
        p = self.cfg.prev
        exp = self.exp_head(self._final(torch.cat([h, h_emo]), c3)[:, p:])
        pose = self.pose_head(self._final(h, c)[:, p:])
        out = torch.stack([torch.cat([exp[0], pose[0]], dim=-1), torch.cat([exp[1], pose[1]], dim=-1),
                           torch.cat([exp[2], pose[1]], dim=-1)])
        e00, ea0, eae = self.precondition(out, x_t.expand(3, -1, -1), tt[:1].expand(3)).unbind(0)
        return nested_cfg(e00, ea0, eae, w_a, w_e)[None]

    def stage1_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("emotion.")]
