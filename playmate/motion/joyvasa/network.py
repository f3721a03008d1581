"""JoyVASA's network: HuBERT audio encoder + the denoising transformer, built from a state dict.

Every size comes from the file (see ``shared/golden/joyvasa/README.md``):
    audio 16 kHz -> transformers ``HubertModel`` (chinese-hubert-base architecture,
    fine-tuned weights) at 50 Hz -> linear resample to the motion fps ->
    ``audio_feature_map`` -> per-frame audio features A [N, d].
    Denoiser: ``feature_proj(concat(prev motion P, x_t))`` + sinusoidal PE +
    diffusion-step embedding -> post-norm ``nn.TransformerDecoder`` layers whose
    cross-attention sees memory ``concat(prev audio Q, A)`` through a diagonal
    mask (token i attends audio frame i only) -> ``motion_dec`` -> x0 estimate.

Positional encoding: the release was trained with the upstream bug that adds
table row ``pe[L]`` to every token (``pe="legacy"``); ``pe="fixed"`` adds
``pe[0:L]`` (upstream HEAD since Dec 2025).
"""

import json
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import ModelFileError
from .files import GENERATOR_NAME, GENERATOR_REMOTE

HUBERT_CONFIG_FILE = Path(__file__).with_name("chinese_hubert_base_config.json")
SAMPLE_RATE = 16000
DENOISER_HEADS = 8          # upstream code default, not stored in the file
TE_DEFAULT_STEPS = 500      # DenoisingNetwork's own n_diff_steps default: time table of 501 rows


def sinusoid_table(max_len, dim):
    """[1, max_len, dim] sin/cos table (float32, same operations as upstream PositionalEncoding)."""
    pe = torch.zeros(max_len, dim)
    position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.unsqueeze(0)


class _Table(nn.Module):
    """Holds one buffer ``pe`` (keeps the upstream state-dict names ``PE.pe`` / ``TE.pe``)."""

    def __init__(self, shape):
        super().__init__()
        self.register_buffer("pe", torch.zeros(shape))


class _Schedule(nn.Module):
    BUFFERS = ("betas", "alphas", "alpha_bars", "sigmas_flex", "sigmas_inflex")

    def __init__(self, n):
        super().__init__()
        for name in self.BUFFERS:
            self.register_buffer(name, torch.zeros(n))


def pad_audio(audio, unit=320, threshold=80):
    """Upstream ``pad_audio``: reflect-pad [B, S] so HuBERT yields exactly S/unit frames."""
    n_units = audio.shape[1] // unit
    side = math.ceil((unit * n_units + threshold - audio.shape[1]) / 2)
    if side >= 0:
        reflect, replicate = side // 2, side % 2
        if reflect > 0:
            audio = F.pad(audio, (reflect, reflect), mode="reflect")
            audio = F.pad(audio, (reflect, reflect), mode="reflect")
        if replicate > 0:
            audio = F.pad(audio, (1, 1), mode="replicate")
    return audio


class JoyVASADenoiser(nn.Module):
    """Upstream ``DenoisingNetwork`` (decoder architecture, sinusoidal PE, no indicator input)."""

    def __init__(self, motion_dim, dim, n_layers, n_heads, ffn, dec_hidden, pe_len, te_len, seq_len):
        super().__init__()
        self.TE = _Table((1, te_len, dim))
        self.diff_step_map = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.PE = _Table((1, pe_len, dim))
        self.feature_proj = nn.Linear(motion_dim, dim)
        layer = nn.TransformerDecoderLayer(dim, n_heads, ffn, activation="gelu", batch_first=True)
        self.transformer = nn.TransformerDecoder(layer, n_layers)
        self.register_buffer("alignment_mask", torch.zeros(seq_len, seq_len, dtype=torch.bool))
        self.motion_dec = nn.Sequential(nn.Linear(dim, dec_hidden), nn.GELU(), nn.Linear(dec_hidden, motion_dim))

    def prepare_memory(self, memory):
        """Per-layer cross-attention outputs for memory [B, L, d] (they don't depend on x_t).

        With the diagonal alignment mask every softmax row has a single entry (= 1),
        so the cross-attention of token i is ``out_proj(W_v memory_i + b_v)``.  For
        any other mask the memory itself is returned and attention runs per call.
        """
        mask = self.alignment_mask
        eye = torch.eye(mask.shape[0], dtype=torch.bool, device=mask.device)
        if memory.shape[1] != mask.shape[0] or not torch.equal(mask, ~eye):
            return memory
        dim = memory.shape[-1]
        outs = []
        for layer in self.transformer.layers:
            att = layer.multihead_attn
            v = F.linear(memory, att.in_proj_weight[2 * dim:], att.in_proj_bias[2 * dim:])
            outs.append(att.out_proj(v))
        return outs

    def step_embedding(self, step):
        """diff_step_map(TE.pe[0, step]) -> [B, d]."""
        return self.diff_step_map(self.TE.pe[0, step])

    def embed(self, x_t, prev_motion, step, pe="legacy"):
        """Input tokens [B, Lp + L, d]: feature_proj(concat(prev_motion, x_t)) + PE + step embedding."""
        tokens = self.feature_proj(torch.cat([prev_motion, x_t], dim=1))
        n = tokens.shape[1]
        table = self.PE.pe
        tokens = tokens + (table[:, n] if pe == "legacy" else table[:, :n])
        return tokens + self.step_embedding(step).unsqueeze(1)

    def transform(self, x, cross):
        """The post-norm decoder layers on tokens x [B, Lp + L, d]; cross = prepare_memory(...)."""
        for i, layer in enumerate(self.transformer.layers):
            x = layer.norm1(x + layer.self_attn(x, x, x, need_weights=False)[0])
            if isinstance(cross, list):
                c = cross[i]
            else:
                c = layer.multihead_attn(x, cross, cross, attn_mask=self.alignment_mask, need_weights=False)[0]
            x = layer.norm2(x + c)
            x = layer.norm3(x + layer.linear2(layer.activation(layer.linear1(x))))
        if self.transformer.norm is not None:
            x = self.transformer.norm(x)
        return x

    def forward(self, x_t, prev_motion, step, cross, pe="legacy"):
        """x_t [B, L, D], prev_motion [B, Lp, D], step [B] (long), cross = prepare_memory(...).

        Returns the x0 estimate for all Lp + L tokens [B, Lp + L, D].
        """
        return self.motion_dec(self.transform(self.embed(x_t, prev_motion, step, pe), cross))


class JoyVASANet(nn.Module):
    """Upstream ``DitTalkingHead`` for inference; built from a state dict (sizes from shapes)."""

    def __init__(self, hubert_config, motion_dim, dim, n_prev, n_motions, fps, n_layers, ffn,
                 dec_hidden, pe_len, te_len, n_steps, audio_dim):
        super().__init__()
        from transformers import HubertModel
        self.audio_encoder = HubertModel(hubert_config)
        self.audio_feature_map = nn.Linear(audio_dim, dim)
        self.start_audio_feat = nn.Parameter(torch.zeros(1, n_prev, dim))
        self.start_motion_feat = nn.Parameter(torch.zeros(1, n_prev, motion_dim))
        self.null_audio_feat = nn.Parameter(torch.zeros(1, 1, dim))
        self.denoising_net = JoyVASADenoiser(motion_dim, dim, n_layers, DENOISER_HEADS, ffn, dec_hidden,
                                             pe_len, te_len, n_prev + n_motions)
        self.diffusion_sched = _Schedule(n_steps + 1)
        self.n_prev, self.n_motions, self.fps, self.motion_dim = n_prev, n_motions, float(fps), motion_dim
        self.hubert_rate = SAMPLE_RATE / math.prod(hubert_config.conv_stride)

    # ------------------------------------------------------------------ audio
    def hubert_stages(self, samples):
        """HuBERT on audio [B, S] (S = 16000 * n_motions / fps): the input after pad_audio, the conv
        features [B, 512, T50] and the last hidden state at 2 * n_motions frames."""
        enc = self.audio_encoder
        x = pad_audio(samples.to(self.audio_feature_map.weight.dtype))
        conv = enc.feature_extractor(x)
        n2 = 2 * self.n_motions
        feats = conv[:, :, :round(n2 * self.hubert_rate / self.fps)]
        if feats.shape[-1] != n2:
            feats = F.interpolate(feats, size=n2, mode="linear", align_corners=False)
        hidden = enc.encoder(enc.feature_projection(feats.transpose(1, 2))).last_hidden_state
        return x, conv, hidden

    def encode_audio_window(self, samples):
        """Audio [B, S] (S = 16000 * n_motions / fps) -> features [B, n_motions, d]."""
        hidden = self.hubert_stages(samples)[2]
        h = F.interpolate(hidden.transpose(1, 2), size=self.n_motions, mode="linear", align_corners=False)
        return self.audio_feature_map(h.transpose(1, 2))


# ------------------------------------------------------------------------ building
def _layer_count(state, prefix):
    idx = {int(k[len(prefix):].split(".", 1)[0]) for k in state if k.startswith(prefix)}
    return max(idx) + 1 if idx else 0


def _shape(state, key, path):
    if key not in state:
        raise ModelFileError("'%s' is not the JoyVASA motion generator: it has no entry '%s' (use %s "
                             "from %s)." % (path, key, GENERATOR_NAME, GENERATOR_REMOTE.url))
    return tuple(state[key].shape)


def hubert_config_for(state, origin):
    """chinese-hubert-base config (shipped JSON) with every size re-read from the tensors."""
    from transformers import HubertConfig
    cfg = json.loads(HUBERT_CONFIG_FILE.read_text())
    cfg.pop("_comment", None)
    p = "audio_encoder."
    n_conv = _layer_count(state, p + "feature_extractor.conv_layers.")
    convs = [_shape(state, p + "feature_extractor.conv_layers.%d.conv.weight" % i, origin) for i in range(n_conv)]
    if len(cfg["conv_stride"]) != n_conv:
        raise ModelFileError("'%s': the audio encoder has %d conv layers, chinese-hubert-base has %d."
                             % (origin, n_conv, len(cfg["conv_stride"])))
    v = _shape(state, p + "encoder.pos_conv_embed.conv.parametrizations.weight.original1", origin)
    cfg.update(
        conv_dim=[s[0] for s in convs], conv_kernel=[s[2] for s in convs],
        hidden_size=_shape(state, p + "feature_projection.projection.weight", origin)[0],
        num_hidden_layers=_layer_count(state, p + "encoder.layers."),
        intermediate_size=_shape(state, p + "encoder.layers.0.feed_forward.intermediate_dense.weight", origin)[0],
        num_conv_pos_embeddings=v[2], num_conv_pos_embedding_groups=v[0] // v[1])
    if p + "masked_spec_embed" not in state:
        cfg.update(mask_time_prob=0.0, mask_feature_prob=0.0)
    config = HubertConfig(**cfg)
    config._attn_implementation = "sdpa"
    return config


def build_network(files, device="cpu", dtype=torch.float32):
    """:class:`JoyVASANet` from :class:`JoyVASAFiles` (sizes from args + shapes, checked against each other)."""
    state, args, origin = dict(files.state), files.args, files.origin
    n_prev, motion_dim = _shape(state, "start_motion_feat", origin)[1:]
    dim, audio_dim = _shape(state, "audio_feature_map.weight", origin)
    seq_len = _shape(state, "denoising_net.alignment_mask", origin)[0]
    n_steps = _shape(state, "diffusion_sched.betas", origin)[0] - 1
    derived = {"n_prev_motions": n_prev, "motion_feat_dim": motion_dim, "feature_dim": dim,
               "n_motions": seq_len - n_prev, "n_diff_steps": n_steps}
    for key, value in derived.items():
        if key in args and args[key] != value:
            raise ModelFileError("'%s' is inconsistent: args.%s = %r but the tensors say %r."
                                 % (origin, key, args[key], value))
    audio_model = str(args.get("audio_model", "hubert_zh"))
    if not audio_model.startswith("hubert"):
        raise ModelFileError("'%s' uses the audio encoder %r; only the HuBERT generators (%s) are "
                             "supported." % (origin, audio_model, GENERATOR_NAME))
    n_layers = _layer_count(state, "denoising_net.transformer.layers.")
    te_len = TE_DEFAULT_STEPS + 1
    sizes = dict(motion_dim=motion_dim, dim=dim, n_prev=n_prev, n_motions=seq_len - n_prev,
                 fps=float(args.get("fps", 25)), n_layers=n_layers,
                 ffn=_shape(state, "denoising_net.transformer.layers.0.linear1.weight", origin)[0],
                 dec_hidden=_shape(state, "denoising_net.motion_dec.0.weight", origin)[0],
                 pe_len=_shape(state, "denoising_net.PE.pe", origin)[1], te_len=te_len,
                 n_steps=n_steps, audio_dim=audio_dim)
    config = hubert_config_for(state, origin)
    with torch.device("meta"):
        net = JoyVASANet(config, **sizes)
    # upstream drops the stored time table and keeps its own (same formula)
    state.pop("denoising_net.TE.pe", None)
    state["denoising_net.TE.pe"] = sinusoid_table(te_len, dim)
    expected = set(net.state_dict().keys())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ModelFileError("'%s' is not the JoyVASA motion generator layout: missing %s, unexpected %s "
                             "(use %s from %s)." % (origin, missing[:5], unexpected[:5], GENERATOR_NAME,
                                                    GENERATOR_REMOTE.url))
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelFileError("'%s' does not fit the JoyVASA network: %s"
                             % (origin, str(exc).splitlines()[-1].strip())) from None
    net.eval().requires_grad_(False)
    net.to(device)
    if dtype != torch.float32:  # the schedule stays float32 whatever the network dtype
        sched = {k: v.clone() for k, v in net.diffusion_sched.state_dict().items()}
        net.to(dtype)
        net.diffusion_sched.load_state_dict(sched, assign=True)
    return net

