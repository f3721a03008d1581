"""Ditto's denoiser (LMDM ``MotionDecoder``): one conditional or unconditional branch.

Shapes for batch B (release sizes in brackets; all are read from the checkpoint, see
:class:`LMDMSizes`): motion D [265], condition C [1103], frames L [80], width W [512].

    h   = input_projection([x | cond_frame repeated])                         [B,L,W]
    c   = cond_projection(cond);  n_cond x pre-norm encoder layer (rotary SA, GELU FFN)
    drop: c = null_cond_embed
    ch  = L3(silu(L1(LN0(mean_frames(c)))))                   drop: ch = null_cond_hidden
    e   = [sin(t w), cos(t w)],  w_j = exp(-j ln(10000) / (W/2 - 1))
    th  = mish(time_mlp.1(e));  tv = to_time_cond(th) + ch;  tt = to_time_tokens(th) as 2 tokens
    mem = norm_cond([c | tt])                                                  [B,L+2,W]
    n_layers x { h += film1(SA(LN1 h)); h += film2(CA(LN2 h, mem)); h += film3(FF(LN3 h)) }
    out = final_layer(h)

``film(y) = (1 + s) y + b`` with ``[s, b] = block.1(mish(tv))``.  Rotary position embedding is
applied to the W-d *inputs* of the attention, on queries and keys only (interleaved pairs:
``rh(y)[2i] = -y[2i+1], rh(y)[2i+1] = y[2i]``), positions 0..n-1 of each sequence.  Attention is
torch's packed ``nn.MultiheadAttention`` (8 heads, a code literal of the release).  Parameter
names are the release's state_dict keys, so the file loads strictly.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

NUM_HEADS = 8        # LMDM.__init__ literal (the checkpoint cannot say)
TIME_TOKENS = 2      # to_time_tokens: 2 tokens of W
LN_EPS = 1e-5


@dataclass(frozen=True)
class LMDMSizes:
    motion_dim: int = 265
    cond_dim: int = 1103
    seq_frames: int = 80
    width: int = 512
    ffn: int = 1024
    n_layers: int = 8
    n_cond_layers: int = 2
    heads: int = NUM_HEADS


def rotate_half(y):
    """Interleaved pairs: (y0, y1, y2, y3, ...) -> (-y1, y0, -y3, y2, ...)."""
    pairs = y.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


class Rotary(nn.Module):
    """``freqs`` [W/2] (a buffer of the file); ``rot(y)`` over the sequence axis (dim -2)."""

    def __init__(self, width):
        super().__init__()
        self.register_buffer("freqs", torch.zeros(width // 2))
        self._cache = {}

    def angles(self, n, device):
        key = (n, str(device), self.freqs.data_ptr())
        if key not in self._cache:
            pos = torch.arange(n, device=device).to(self.freqs.dtype)
            theta = (pos[:, None] * self.freqs[None, :]).repeat_interleave(2, dim=-1)
            self._cache[key] = (theta.cos(), theta.sin())
        return self._cache[key]

    def forward(self, y):
        cos, sin = self.angles(y.shape[-2], y.device)
        return y * cos.to(y.dtype) + rotate_half(y) * sin.to(y.dtype)


class FiLM(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.block = nn.Sequential(nn.Mish(), nn.Linear(width, 2 * width))

    def forward(self, y, tv):
        scale, shift = self.block(tv)[:, None, :].chunk(2, dim=-1)
        return (scale + 1) * y + shift


def _attention(mha, query, key, value):
    return mha(query, key, value, need_weights=False)[0]


class EncoderLayer(nn.Module):
    def __init__(self, sizes, rotary):
        super().__init__()
        w = sizes.width
        self.self_attn = nn.MultiheadAttention(w, sizes.heads, batch_first=True)
        self.linear1 = nn.Linear(w, sizes.ffn)
        self.linear2 = nn.Linear(sizes.ffn, w)
        self.norm1 = nn.LayerNorm(w, eps=LN_EPS)
        self.norm2 = nn.LayerNorm(w, eps=LN_EPS)
        self.rotary = rotary

    def forward(self, x):
        y = self.norm1(x)
        qk = self.rotary(y)
        x = x + _attention(self.self_attn, qk, qk, y)
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x))))


class DecoderLayer(nn.Module):
    def __init__(self, sizes, rotary):
        super().__init__()
        w = sizes.width
        self.self_attn = nn.MultiheadAttention(w, sizes.heads, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(w, sizes.heads, batch_first=True)
        self.linear1 = nn.Linear(w, sizes.ffn)
        self.linear2 = nn.Linear(sizes.ffn, w)
        self.norm1 = nn.LayerNorm(w, eps=LN_EPS)
        self.norm2 = nn.LayerNorm(w, eps=LN_EPS)
        self.norm3 = nn.LayerNorm(w, eps=LN_EPS)
        self.film1 = FiLM(w)
        self.film2 = FiLM(w)
        self.film3 = FiLM(w)
        self.rotary = rotary

    def forward(self, h, mem, mem_rot, tv):
        y = self.norm1(h)
        qk = self.rotary(y)
        h = h + self.film1(_attention(self.self_attn, qk, qk, y), tv)
        y = self.norm2(h)
        h = h + self.film2(_attention(self.multihead_attn, self.rotary(y), mem_rot, mem), tv)
        return h + self.film3(self.linear2(F.gelu(self.linear1(self.norm3(h)))), tv)


class DecoderStack(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.stack = nn.ModuleList(layers)


def time_embedding(t, width):
    """[sin | cos] of t * exp(-j ln(10000) / (W/2 - 1)), j < W/2 (float32, as the release)."""
    half = width // 2
    freq = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
    arg = t[:, None] * freq[None, :]
    return torch.cat((arg.sin(), arg.cos()), dim=-1)


class MotionDecoder(nn.Module):
    """The LMDM denoiser; ``forward(x, cond_frame, cond, t)`` predicts x0 of one branch."""

    def __init__(self, sizes=LMDMSizes()):
        super().__init__()
        self.sizes = sizes
        w, d = sizes.width, sizes.motion_dim
        self.rotary = Rotary(w)
        self.time_mlp = nn.Sequential(nn.Identity(), nn.Linear(w, 4 * w), nn.Mish())
        self.to_time_cond = nn.Sequential(nn.Linear(4 * w, w))
        self.to_time_tokens = nn.Sequential(nn.Linear(4 * w, TIME_TOKENS * w))
        self.null_cond_embed = nn.Parameter(torch.zeros(1, sizes.seq_frames, w))
        self.null_cond_hidden = nn.Parameter(torch.zeros(1, w))
        self.norm_cond = nn.LayerNorm(w, eps=LN_EPS)
        self.input_projection = nn.Linear(2 * d, w)
        self.cond_encoder = nn.Sequential(*[EncoderLayer(sizes, self.rotary) for _ in range(sizes.n_cond_layers)])
        self.cond_projection = nn.Linear(sizes.cond_dim, w)
        self.non_attn_cond_projection = nn.Sequential(nn.LayerNorm(w, eps=LN_EPS), nn.Linear(w, w), nn.SiLU(),
                                                      nn.Linear(w, w))
        self.seqTransDecoder = DecoderStack([DecoderLayer(sizes, self.rotary) for _ in range(sizes.n_layers)])
        self.final_layer = nn.Linear(w, d)

    @property
    def device(self):
        return self.final_layer.weight.device

    def forward(self, x, cond_frame, cond, t, internals=None):
        """x [B,L,D], cond_frame [B,D], cond [B,L,C] (None = the unconditional branch), t [B] int.

        ``internals`` (a dict) receives ``time_mlp`` [B,4W], ``cond_encoder_out`` [B,L,W] (conditional
        branch) and ``decoder_out`` [B,L,W] (before final_layer)."""
        b = x.shape[0]
        if cond is None:
            c, ch = self.null_cond_embed.expand(b, -1, -1), self.null_cond_hidden.expand(b, -1)
        else:
            c, ch = self._condition(cond)
            if internals is not None:
                internals["cond_encoder_out"] = c
        return self._denoise(x, cond_frame, c, ch, t, internals)

    def branches(self, x, cond_frame, conds, t):
        """The unconditional branch and one conditional branch per entry of ``conds`` in one batched
        call (what guidance needs at every step): x [1,L,D], cond_frame [1,D], conds [[1,L,C], ...],
        t [1] -> x0 predictions [1 + len(conds), L, D], the unconditional one first."""
        k = 1 + len(conds)
        c, ch = self._condition(torch.cat(conds))
        c = torch.cat([self.null_cond_embed, c])
        ch = torch.cat([self.null_cond_hidden, ch])
        return self._denoise(x.expand(k, -1, -1), cond_frame.expand(k, -1), c, ch, t.expand(k))

    def _condition(self, cond):
        c = self.cond_encoder(self.cond_projection(cond))
        return c, self.non_attn_cond_projection(c.mean(dim=-2))

    def _denoise(self, x, cond_frame, c, ch, t, internals=None):
        b, n, _ = x.shape
        h = self.input_projection(torch.cat([x, cond_frame[:, None, :].expand(b, n, -1)], dim=-1))
        th = self.time_mlp(time_embedding(t, self.sizes.width))
        tv = self.to_time_cond(th) + ch
        tt = self.to_time_tokens(th).unflatten(-1, (TIME_TOKENS, -1))
        mem = self.norm_cond(torch.cat([c, tt], dim=-2))
        mem_rot = self.rotary(mem)
        for layer in self.seqTransDecoder.stack:
            h = layer(h, mem, mem_rot, tv)
        if internals is not None:
            internals["time_mlp"] = th
            internals["decoder_out"] = h
        return self.final_layer(h)
