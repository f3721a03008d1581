"""JoyVASA's released audio-to-motion generator as a Playmate motion backend.

Files (Hugging Face ``jdh-algo/JoyVASA``, MIT):
    motion_generator/motion_generator_hubert_chinese.pt   torch.save pickle {'args', 'model', 'iter'}
    motion_template/motion_template.pkl                   pickle of 45 float32 numpy arrays
Both are read without unpickling code (:mod:`playmate.motion.safeload`) and
converted once into ``motion_generator_hubert_chinese.safetensors`` next to the
``.pt`` (tensors + template, ``args`` as JSON metadata), which later loads use.

Network (every size from the file; see ``shared/golden/joyvasa/README.md``):
    audio 16 kHz -> transformers ``HubertModel`` (chinese-hubert-base architecture,
    fine-tuned weights) at 50 Hz -> linear resample to the motion fps ->
    ``audio_feature_map`` -> per-frame audio features A [N, d].
    Denoiser: ``feature_proj(concat(prev motion P, x_t))`` + sinusoidal PE +
    diffusion-step embedding -> post-norm ``nn.TransformerDecoder`` layers whose
    cross-attention sees memory ``concat(prev audio Q, A)`` through a diagonal
    mask (token i attends audio frame i only) -> ``motion_dec`` -> x0 estimate.
    Sampler: ancestral DDPM with x0 prediction on the cosine schedule stored in
    the file, audio classifier-free guidance ``u + s*(c - u)``.

Pipeline (upstream ``gen_motion_sequence``): 1280 zero samples before and 640
after the audio, windows of ``n_motions`` frames (100 = 4 s) each conditioned on
the previous window's last ``n_prev_motions`` frames (10) and audio features
(learned start features for the first window); all windows start from the
same x_T (upstream reuses window 0's draw).  Motion vectors (73 =
exp 63 | scale | t 3 | pitch | yaw | roll | 3 unused) are de-normalised with the
motion template (z-score for exp, min-max for the rest, angles in degrees),
then scale/t/angles are smoothed by an EMA (alpha 0.01) as upstream does.

Positional encoding: the release was trained with the upstream bug that adds
table row ``pe[L]`` to every token (``pe="legacy"``, default); ``pe="fixed"``
adds ``pe[0:L]`` (upstream HEAD since Dec 2025).

Frame timing (our choice): native frame k describes padded audio
``[k*640, (k+1)*640)``, i.e. original audio time ``(k - 2)/25`` s.  The returned
MOTION drops the 2 lead-in frames (and the trailing padding) so that frame i
belongs to audio time ``i/fps`` and there are exactly ``round(seconds * fps)``
frames.  The relative-transfer reference stays upstream's first native frame
(the smoothed pose and expression on the lead-in silence); it travels in
``info["relative_to"]`` and :func:`playmate.motion.compose.compose_keypoints`
uses it, together with upstream's defaults in ``info["compose"]``
(driving multiplier 1.1, lip keypoints taken from the driving expression).
"""

import hashlib
import json
import logging
import math
import shutil
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InputError, ModelFileError
from ..hub import Remote, ensure_file
from ..safeio import atomic_path
from .generator import (SamplingDefaults, check_audio, check_steps, finite, noise_draws, positive,
                        refuse_lip_guidance)
from .safeload import TRAINING_ARGS_GLOBALS, load_numpy_pickle, load_torch_pickle
from .types import Motion

log = logging.getLogger(__name__)

RELEASE_REPO = "jdh-algo/JoyVASA"
GENERATOR_NAME = "motion_generator_hubert_chinese.pt"
TEMPLATE_NAME = "motion_template.pkl"
GENERATOR_REMOTE = Remote(RELEASE_REPO, "motion_generator/" + GENERATOR_NAME)
TEMPLATE_REMOTE = Remote(RELEASE_REPO, "motion_template/" + TEMPLATE_NAME)
CONVERTED_FORMAT = "playmate-joyvasa"
CONVERTED_VERSION = 1
HUBERT_CONFIG_FILE = Path(__file__).with_name("chinese_hubert_base_config.json")

SAMPLE_RATE = 16000
LEAD_IN_SAMPLES = 1280      # upstream pads the audio with this much silence before ...
TAIL_SAMPLES = 640          # ... and this much after
DENOISER_HEADS = 8          # upstream code default, not stored in the file
TE_DEFAULT_STEPS = 500      # DenoisingNetwork's own n_diff_steps default: time table of 501 rows
SMOOTH_ALPHA = 0.01         # upstream smooth_(method="ema")
DEFAULT_CFG_AUDIO = 2.8     # upstream ArgumentConfig.cfg_scale
PIPELINE_COMPOSE = {"multiplier": 1.1, "lip_from_driving": True}  # upstream inference defaults
PE_MODES = ("legacy", "fixed")
FEATURE_CACHE_WINDOWS = 256  # audio-feature memo: 256 windows of 4 s = 17 min of audio, ~26 MB
TEMPLATE_KEYS = ("mean_exp", "std_exp") + tuple(
    "%s_%s" % (b, g) for g in ("scale", "t", "pitch", "yaw", "roll") for b in ("max", "min"))
WEIGHT_NORM_LEGACY = {"weight_g": "parametrizations.weight.original0",
                      "weight_v": "parametrizations.weight.original1"}


# --------------------------------------------------------------------------- files
@dataclass
class JoyVASAFiles:
    """The content of a release (or its conversion): args, state dict, motion template."""
    args: dict
    state: dict     # name -> torch.Tensor (weight-norm keys in the parametrization layout)
    template: dict  # name -> float32 numpy array [n]
    origin: str     # human-readable description of where it came from


def _plain_arg(value):
    if isinstance(value, PurePath):
        return value.as_posix()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_arg(v) for v in value]
    return str(value)


def normalise_state_dict(state, path):
    """Tensors only; old weight-norm names (``conv.weight_g/_v``) -> parametrization names."""
    out = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ModelFileError("'%s' is not a JoyVASA motion generator: its 'model' entry %r is not "
                                 "a tensor." % (path, key))
        prefix, _, leaf = key.rpartition(".")
        if leaf in WEIGHT_NORM_LEGACY and prefix.endswith("pos_conv_embed.conv"):
            key = prefix + "." + WEIGHT_NORM_LEGACY[leaf]
        out[key] = value
    return out


def read_release(generator_path, template_path):
    """Read the two released files safely (no code execution); see module docstring."""
    generator_path, template_path = Path(generator_path), Path(template_path)
    template = read_template(template_path)  # the small file first: a bad one fails fast
    what = "JoyVASA motion generator"
    obj = load_torch_pickle(generator_path, allow=TRAINING_ARGS_GLOBALS, what=what)
    if not isinstance(obj, dict) or "model" not in obj or "args" not in obj:
        raise ModelFileError("'%s' is not a JoyVASA motion generator: expected a checkpoint with "
                             "'args' and 'model' (the file %s from %s)."
                             % (generator_path, GENERATOR_NAME, GENERATOR_REMOTE.url))
    args = obj["args"]
    args = vars(args) if hasattr(args, "__dict__") else args
    if not isinstance(args, dict) or not isinstance(obj["model"], dict):
        raise ModelFileError("'%s' is not a JoyVASA motion generator: 'args' or 'model' has an "
                             "unexpected type." % generator_path)
    args = {str(k): _plain_arg(v) for k, v in args.items()}
    if isinstance(obj.get("iter"), int):
        args.setdefault("_iter", obj["iter"])
    state = normalise_state_dict(obj["model"], generator_path)
    return JoyVASAFiles(args, state, template, "%s + %s" % (generator_path, template_path))


def read_template(path):
    raw = load_numpy_pickle(path, what="JoyVASA motion template")
    if not isinstance(raw, dict):
        raise ModelFileError("'%s' is not a JoyVASA motion template (expected a dict of arrays)." % path)
    template = {}
    for key, value in raw.items():
        arr = np.asarray(value)
        if not isinstance(key, str) or arr.dtype.kind not in "fiu":
            raise ModelFileError("'%s' is not a JoyVASA motion template: entry %r is not numeric."
                                 % (path, key))
        template[key] = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)
    missing = [k for k in TEMPLATE_KEYS if k not in template]
    if missing:
        raise ModelFileError("'%s' is not a JoyVASA motion template: it lacks %s (use %s from %s)."
                             % (path, missing, TEMPLATE_NAME, TEMPLATE_REMOTE.url))
    return template


def _stamp(path):
    st = Path(path).stat()
    return {"name": Path(path).name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_converted(files, path, sources):
    """Write ``files`` as one safetensors file (atomically); ``sources``: {role: original path}."""
    from safetensors.torch import save_file
    tensors = {k: v.detach().cpu().contiguous() for k, v in files.state.items()}
    tensors.update({"template." + k: torch.from_numpy(v.copy()) for k, v in files.template.items()})
    meta = {"format": CONVERTED_FORMAT, "format_version": str(CONVERTED_VERSION),
            "args": json.dumps(files.args, sort_keys=True),
            "sources": json.dumps({role: _stamp(p) for role, p in sources.items()}, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    if "generator" in sources:  # same permissions as the original (the temp file was 0600)
        shutil.copymode(sources["generator"], path)
    return Path(path)


def _converted_metadata(path):
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as exc:
        raise ModelFileError("'%s' is not a readable safetensors file (%s): delete it, it is "
                             "rebuilt from %s." % (path, str(exc)[:200], GENERATOR_NAME)) from None


def read_converted(path):
    from safetensors import safe_open
    path = Path(path)
    meta = _converted_metadata(path)
    if meta.get("format") != CONVERTED_FORMAT:
        raise ModelFileError("'%s' is not a converted JoyVASA generator (format %r)."
                             % (path, meta.get("format")))
    if int(meta.get("format_version", "0")) > CONVERTED_VERSION:
        raise ModelFileError("'%s' was converted by a newer Playmate: update Playmate or delete the "
                             "file (it is rebuilt from %s)." % (path, GENERATOR_NAME))
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ModelFileError("'%s' is damaged (%s): delete it, it is rebuilt from %s."
                             % (path, str(exc)[:200], GENERATOR_NAME)) from None
    template = {k[9:]: tensors.pop(k).numpy() for k in list(tensors) if k.startswith("template.")}
    missing = [k for k in TEMPLATE_KEYS if k not in template]
    if missing:
        raise ModelFileError("'%s' lacks the motion-template entries %s: delete it, it is rebuilt "
                             "from the originals." % (path, missing))
    return JoyVASAFiles(json.loads(meta["args"]), tensors, template, str(path))


def _converted_is_fresh(path, sources):
    try:
        recorded = json.loads(_converted_metadata(path).get("sources", "{}"))
    except (ModelFileError, ValueError):
        return False
    for role, original in sources.items():
        if original is not None and Path(original).is_file():
            stamp = _stamp(original)
            if {k: recorded.get(role, {}).get(k) for k in ("size", "mtime_ns")} != \
                    {"size": stamp["size"], "mtime_ns": stamp["mtime_ns"]}:
                return False
    return True


def _first_existing(candidates):
    return next((c for c in candidates if c.is_file()), None)


def locate_and_read(path_or_folder):
    """Find the release files (folder, HF sub-folder layout, or a file path), download what is
    missing, read them, and convert them once to safetensors.  Returns :class:`JoyVASAFiles`."""
    path = Path(path_or_folder).expanduser()
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ModelFileError("The converted JoyVASA generator '%s' does not exist: pass the folder "
                                 "holding %s and %s instead." % (path, GENERATOR_NAME, TEMPLATE_NAME))
        return read_converted(path)
    if path.suffix == ".pkl":  # the template's path: look for the generator around it
        folder = path.parent
        generator_candidates = [folder / GENERATOR_NAME, folder / "motion_generator" / GENERATOR_NAME,
                                folder.parent / "motion_generator" / GENERATOR_NAME]
        template_candidates = [path]
    elif path.suffix == ".pt" or path.is_file():
        folder = path.parent
        generator_candidates = [path]
        template_candidates = [folder / TEMPLATE_NAME, folder / "motion_template" / TEMPLATE_NAME,
                               folder.parent / "motion_template" / TEMPLATE_NAME]
    else:
        folder = path
        generator_candidates = [folder / GENERATOR_NAME, folder / "motion_generator" / GENERATOR_NAME]
        template_candidates = [folder / TEMPLATE_NAME, folder / "motion_template" / TEMPLATE_NAME]
    generator = _first_existing(generator_candidates)
    template = _first_existing(template_candidates)
    converted_candidates = [c.with_suffix(".safetensors") for c in generator_candidates]
    converted = _first_existing(converted_candidates)
    if converted is not None and (generator is None or converted.parent == generator.parent) \
            and _converted_is_fresh(converted, {"generator": generator, "template": template}):
        return read_converted(converted)
    if generator is None:
        generator = ensure_file(generator_candidates[0], GENERATOR_REMOTE, "JoyVASA motion generator")
    if template is None:
        template = ensure_file(template_candidates[0], TEMPLATE_REMOTE, "JoyVASA motion template")
    files = read_release(generator, template)
    target = generator.with_suffix(".safetensors")
    try:
        write_converted(files, target, {"generator": generator, "template": template})
        log.info("converted %s to %s", generator, target)
    except Exception as exc:  # read-only folder, disk full ...: the conversion is only a cache
        log.warning("could not write %s (%s); loading from the originals each time", target, exc)
    return files


# ------------------------------------------------------------------------- network
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

    def forward(self, x_t, prev_motion, step, cross, pe="legacy", internals=None):
        """x_t [B, L, D], prev_motion [B, Lp, D], step [B] (long), cross = prepare_memory(...).

        Returns the x0 estimate for all Lp + L tokens [B, Lp + L, D].  ``internals``
        (a dict) receives ``tokens_in`` and ``transformer_out`` when given.
        """
        tokens = self.feature_proj(torch.cat([prev_motion, x_t], dim=1))
        n = tokens.shape[1]
        table = self.PE.pe
        tokens = tokens + (table[:, n] if pe == "legacy" else table[:, :n])
        x = tokens + self.step_embedding(step).unsqueeze(1)
        if internals is not None:
            internals["tokens_in"] = x
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
        if internals is not None:
            internals["transformer_out"] = x
        return self.motion_dec(x)


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
    def encode_audio_window(self, samples, internals=None):
        """Audio [B, S] (S = 16000 * n_motions / fps) -> features [B, n_motions, d].

        ``internals`` receives ``input`` (after pad_audio), ``conv`` (HuBERT conv
        features [B, 512, T50]) and ``hidden`` (HuBERT last hidden state at 2 * n_motions frames).
        """
        enc = self.audio_encoder
        dtype = self.audio_feature_map.weight.dtype
        x = pad_audio(samples.to(dtype))
        conv = enc.feature_extractor(x)
        n2 = 2 * self.n_motions
        feats = conv[:, :, :round(n2 * self.hubert_rate / self.fps)]
        if feats.shape[-1] != n2:
            feats = F.interpolate(feats, size=n2, mode="linear", align_corners=False)
        hidden = enc.encoder(enc.feature_projection(feats.transpose(1, 2))).last_hidden_state
        h = F.interpolate(hidden.transpose(1, 2), size=self.n_motions, mode="linear", align_corners=False)
        if internals is not None:
            internals.update(input=x, conv=conv, hidden=hidden)
        return self.audio_feature_map(h.transpose(1, 2))

    # ---------------------------------------------------------------- sampler
    def schedule_steps(self, steps=None):
        """Descending time steps T..1 used by the sampler (all T, or ``steps`` evenly strided)."""
        total = self.diffusion_sched.betas.shape[0] - 1
        if steps is None or int(steps) == total:
            return list(range(total, 0, -1))
        return [int(t) for t in torch.linspace(total, 1, int(steps), dtype=torch.float64).round().long()]

    def guided(self, x_t, step, prev_motion, cross, cfg, pe, internals=None):
        """CFG x0 estimate [1, L, D] and the raw denoiser batch ([uncond, cond] or [cond])."""
        nb = len(cross[0]) if isinstance(cross, list) else cross.shape[0]
        steps = torch.full((nb,), int(step), dtype=torch.long, device=x_t.device)
        raw = self.denoising_net(x_t.expand(nb, -1, -1), prev_motion.expand(nb, -1, -1), steps, cross, pe,
                                 internals=internals)
        out = raw[:, -self.n_motions:].float()
        if nb == 1:
            return out, raw
        u, c = out[0:1], out[1:2]
        return u + cfg * (c - u), raw

    def branch_memory(self, audio_feat, prev_audio, cfg):
        """Cross-attention context for the CFG batch [uncond (null audio), cond]; cond only if cfg == 1."""
        null = self.null_audio_feat.expand(1, self.n_motions, -1)
        audio = audio_feat if cfg == 1 else torch.cat([null, audio_feat], dim=0)
        memory = torch.cat([prev_audio.expand(audio.shape[0], -1, -1), audio], dim=1)
        return self.denoising_net.prepare_memory(memory)

    def sample_window(self, audio_feat, prev_motion, prev_audio, x_T, draw, *, cfg, pe, timesteps,
                      trace=None, on_step=None):
        """Ancestral sampling of one window -> x_0 [1, n_motions, D] (float32).

        ``draw(shape)`` serves the Gaussian draws (one per step that goes to t > 0).
        ``trace`` (a dict) receives ``x[t]`` for every visited t and ``raw[t]``.
        """
        sched = {k: getattr(self.diffusion_sched, k).detach().float().cpu() for k in _Schedule.BUFFERS}
        dtype = self.audio_feature_map.weight.dtype
        cross = self.branch_memory(audio_feat.to(dtype), prev_audio.to(dtype), cfg)
        prev_motion = prev_motion.to(dtype)
        x = x_T.float()
        if trace is not None:
            trace.setdefault("x", {})[timesteps[0]] = x
            trace.setdefault("raw", {})
        for k, t in enumerate(timesteps):
            s = timesteps[k + 1] if k + 1 < len(timesteps) else 0
            x0, raw = self.guided(x.to(dtype), t, prev_motion, cross, cfg, pe)
            ab_t, ab_s = sched["alpha_bars"][t], sched["alpha_bars"][s]
            if s == t - 1:  # upstream's own step: take alpha and sigma from the file
                alpha, sigma = sched["alphas"][t], sched["sigmas_inflex"][t]
            else:           # strided step: the same posterior for the jump t -> s
                alpha = ab_t / ab_s
                sigma = torch.sqrt((1 - ab_s) / (1 - ab_t) * (1 - alpha))
            c0 = ((1 - ab_s) * torch.sqrt(alpha) / (1 - ab_t)).item()
            c1 = ((1 - alpha) * torch.sqrt(ab_s) / (1 - ab_t)).item()
            x = c0 * x + c1 * x0
            if s > 0:
                x = x + sigma.item() * draw(x.shape).to(x)
            if trace is not None:
                trace["raw"][t] = raw
                trace["x"][s] = x
            if on_step is not None:
                on_step()
        return x


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


# ----------------------------------------------------------------------- pipeline
@dataclass
class AudioLayout:
    """How upstream windows a clip of ``n_samples`` (after adding the lead-in/tail silence)."""
    padded_len: int     # samples after the 1280/640 silence
    n_windows: int
    n_pad_frames: int   # padded frames dropped from the last window
    n_native: int       # native frames (upstream's count, silence frames included)
    lead_in: int        # native frames before the audio's first sample
    window_samples: int
    unit: float         # samples per frame


class JoyVASAGenerator:
    """JoyVASA audio -> MOTION (see the module docstring).  Build with :func:`load_joyvasa`."""

    name = "joyvasa"
    supports_emotion = False
    supports_lip_guidance = False
    needs_audio_encoder = False   # the HuBERT encoder is part of the checkpoint

    def __init__(self, net, template, args, origin=""):
        self.net = net
        self.args = dict(args)
        self.origin = origin
        self.native_fps = net.fps
        self.n_steps = net.diffusion_sched.betas.shape[0] - 1
        self.pad_mode = str(self.args.get("pad_mode", "zero"))
        self.template = {k: torch.as_tensor(np.asarray(v, np.float32)) for k, v in template.items()}
        self._feature_cache = OrderedDict()

    @property
    def device(self):
        return self.net.audio_feature_map.weight.device

    @property
    def defaults(self):
        return SamplingDefaults(steps=self.n_steps, cfg_audio=DEFAULT_CFG_AUDIO, min_steps=1, max_steps=self.n_steps)

    # ---------------------------------------------------------------- stages
    def layout(self, n_samples):
        unit = SAMPLE_RATE / self.native_fps
        n = self.net.n_motions
        padded = int(n_samples) + LEAD_IN_SAMPLES + TAIL_SAMPLES
        clip_len = int(padded / SAMPLE_RATE * self.native_fps)
        n_windows = 1 if clip_len <= n else math.ceil(clip_len / n)
        window_samples = round(unit * n)
        n_pad_frames = math.ceil((window_samples * n_windows - padded) / unit)
        return AudioLayout(padded, n_windows, n_pad_frames, n_windows * n - max(n_pad_frames, 0),
                           round(LEAD_IN_SAMPLES / unit), window_samples, unit)

    def padded_audio(self, audio, lay):
        a = F.pad(audio, (LEAD_IN_SAMPLES, TAIL_SAMPLES))
        extra = lay.window_samples * lay.n_windows - a.shape[0]
        if extra > 0:
            value = float(a[-1]) if self.pad_mode == "replicate" else 0.0
            a = F.pad(a, (0, extra), value=value)
        return a

    def audio_features(self, window, internals=None):
        """Features [1, n_motions, d] of one window of samples, memoised by content.

        Windows are encoded independently, so re-generating the same audio with
        another seed, guidance or step count skips the audio encoder.
        """
        key = hashlib.sha1(window.detach().cpu().numpy().tobytes()).hexdigest()
        feats = self._feature_cache.get(key) if internals is None else None
        if feats is None:
            feats = self.net.encode_audio_window(window.unsqueeze(0), internals=internals)
            self._feature_cache[key] = feats
            while len(self._feature_cache) > FEATURE_CACHE_WINDOWS:
                self._feature_cache.popitem(last=False)
        else:
            self._feature_cache.move_to_end(key)
        return feats

    def clear_feature_cache(self):
        self._feature_cache.clear()

    def run_windows(self, audio, *, draw, cfg, pe, timesteps, trace=None, on_step=None):
        """Native normalised motion [n_native, D] for audio [S] (float32 on CPU or device)."""
        net = self.net
        lay = self.layout(audio.shape[0])
        a = self.padded_audio(audio.to(self.device, torch.float32), lay)
        prev_motion, prev_audio, x_T, outs = net.start_motion_feat, net.start_audio_feat, None, []
        for w in range(lay.n_windows):
            lo, hi = round(w * net.n_motions * lay.unit), round((w + 1) * net.n_motions * lay.unit)
            internals = {} if (trace is not None and w == 0) else None
            feats = self.audio_features(a[lo:hi], internals=internals)
            if x_T is None:
                x_T = draw((1, net.n_motions, net.motion_dim)).to(self.device)
            wtrace = {} if trace is not None and w == 0 else None
            x0 = net.sample_window(feats, prev_motion, prev_audio, x_T, draw, cfg=cfg, pe=pe,
                                   timesteps=timesteps, trace=wtrace, on_step=on_step)
            if trace is not None:
                if w == 0:
                    trace.update(audio_input=internals["input"], hubert_conv=internals["conv"],
                                 hubert_hidden=internals["hidden"], sampler=wtrace)
                trace.setdefault("audio_features", []).append(feats)
                trace.setdefault("window_motion", []).append(x0)
            prev_motion, prev_audio = x0[:, -net.n_prev:], feats[:, -net.n_prev:]
            outs.append(x0[0])
        motion = torch.cat(outs, dim=0)[:lay.n_native]
        return motion.float().cpu(), lay

    def denormalise(self, m):
        """Normalised motion [N, >=70] -> dict exp [N,21,3], scale [N,1], t [N,3], pitch/yaw/roll [N,1]."""
        tp = self.template

        def minmax(x, g):
            return x * (tp["max_" + g] - tp["min_" + g]) + tp["min_" + g]

        return {"exp": (m[:, :63] * tp["std_exp"] + tp["mean_exp"]).reshape(-1, 21, 3),
                "scale": minmax(m[:, 63:64], "scale"), "t": minmax(m[:, 64:67], "t"),
                "pitch": minmax(m[:, 67:68], "pitch"), "yaw": minmax(m[:, 68:69], "yaw"),
                "roll": minmax(m[:, 69:70], "roll")}

    @staticmethod
    def smooth(kp):
        """Upstream EMA (alpha 0.01, float32) over [scale, t, pitch, yaw, roll]; exp untouched."""
        v = torch.cat([kp["scale"], kp["t"], kp["pitch"], kp["yaw"], kp["roll"]], dim=1).float()
        out = torch.empty_like(v)
        s = v[0]
        out[0] = s
        for i in range(1, v.shape[0]):  # a recursion over frames (7 values each)
            s = SMOOTH_ALPHA * v[i] + (1 - SMOOTH_ALPHA) * s
            out[i] = s
        return {"exp": kp["exp"], "scale": out[:, 0:1], "t": out[:, 1:4], "pitch": out[:, 4:5],
                "yaw": out[:, 5:6], "roll": out[:, 6:7]}

    # -------------------------------------------------------------- interface
    def generate(self, audio_16k, source=None, *, fps=25.0, steps=None, cfg_audio=None, cfg_emotion=None,
                 emotion=None, intensity=1.0, seed=0, audio_features=None, audio_encoder=None,
                 lip_guidance=None, progress=None, pe="legacy", smooth=True, noise=None, trace=None):
        """Audio (16 kHz mono float32 [T]) -> MOTION (drive "relative", ``fps`` frames per second).

        ``source`` is not used (JoyVASA does not condition on the face).  ``steps``:
        None = the file's 50; fewer = the same ancestral sampler on evenly strided
        steps.  ``cfg_audio``: classifier-free guidance scale (upstream 2.8).
        Emotion inputs (``emotion``, ``cfg_emotion``, ``intensity``) are ignored
        (``supports_emotion`` is False) and noted in ``info``.  ``noise``: optional iterable of tensors served in upstream's draw
        order (x_T, then per window one [1, n_motions, D] draw per step except the
        last) instead of the seeded generator.  ``progress(done, total)`` is called
        after every denoising step.  ``trace`` (a dict, for parity checks) receives the
        intermediate arrays of every stage (see :mod:`playmate.motion.joyvasa_parity`).
        """
        refuse_lip_guidance(self, lip_guidance)
        audio = check_audio(audio_16k)
        fps = positive(fps, "fps")
        if pe not in PE_MODES:
            raise InputError("pe must be one of %s, got %r." % (PE_MODES, pe))
        steps = None if steps is None else check_steps(steps, self.defaults, self.name)
        cfg = DEFAULT_CFG_AUDIO if cfg_audio is None else finite(cfg_audio, "cfg_audio")
        n_out = round(audio.shape[0] / SAMPLE_RATE * fps)
        if n_out < 1:
            raise InputError("The audio (%d samples) is shorter than one frame at %g fps: use a longer "
                             "clip." % (audio.shape[0], fps))
        draw = noise_draws(seed, noise)
        timesteps = self.net.schedule_steps(steps)
        lay = self.layout(audio.shape[0])
        total, done = lay.n_windows * len(timesteps), [0]

        def on_step():
            done[0] += 1
            if progress is not None:
                progress(done[0], total)

        with torch.no_grad():
            norm, lay = self.run_windows(audio, draw=draw, cfg=cfg, pe=pe, timesteps=timesteps,
                                         trace=trace, on_step=on_step)
        kp = self.denormalise(norm)
        if trace is not None:
            trace.update(layout=lay, motion_norm=norm, denorm=kp)
        if smooth:
            kp = self.smooth(kp)
        if trace is not None:
            trace["drv"] = kp
        reference = {k: v[0].reshape(-1).tolist() for k, v in kp.items()}
        kept = {k: v[lay.lead_in:] for k, v in kp.items()}
        motion = Motion(exp=kept["exp"], pitch=kept["pitch"][:, 0], yaw=kept["yaw"][:, 0],
                        roll=kept["roll"][:, 0], t=kept["t"], scale=kept["scale"][:, 0],
                        fps=self.native_fps, drive="relative")
        if fps == self.native_fps:
            motion = motion.slice(0, n_out)
        else:
            motion = motion.resample(fps, num_frames=n_out)
        info = {"generator": self.name, "seed": int(seed) if noise is None else None,
                "cfg_audio": cfg, "steps": len(timesteps), "pe": pe, "smooth": bool(smooth),
                "native_fps": self.native_fps, "audio_seconds": audio.shape[0] / SAMPLE_RATE,
                "compose": dict(PIPELINE_COMPOSE), "relative_to": reference,
                "weights": Path(self.origin.split(" + ")[0]).name if self.origin else ""}
        if emotion is not None or float(cfg_emotion or 0.0) != 0.0:
            info["emotion"] = "ignored: the JoyVASA generator has no emotion control"
        return motion.replace(info=info)


def looks_like_joyvasa(path):
    """True for a JoyVASA release folder (flat or HF layout), its ``.pt`` / template, or a
    converted ``.safetensors`` (for loaders that dispatch on what a path holds)."""
    path = Path(path)
    if path.is_dir():
        return any((path / sub / name).is_file() for sub in ("", "motion_generator")
                   for name in (GENERATOR_NAME, Path(GENERATOR_NAME).with_suffix(".safetensors").name))
    if path.suffix == ".safetensors" and path.is_file():
        try:
            return _converted_metadata(path).get("format") == CONVERTED_FORMAT
        except ModelFileError:
            return False
    return path.name in (GENERATOR_NAME, TEMPLATE_NAME)


def load_joyvasa(path_or_folder, device="cpu", dtype=torch.float32):
    """The JoyVASA generator from a folder (flat or HF layout), the ``.pt`` or the converted
    ``.safetensors``; missing files are downloaded when online (else ModelFileError)."""
    files = locate_and_read(path_or_folder)
    net = build_network(files, device=device, dtype=dtype)
    return JoyVASAGenerator(net, files.template, files.args, files.origin)


__all__ = ["JoyVASAGenerator", "load_joyvasa", "looks_like_joyvasa", "read_release", "read_converted",
           "write_converted", "build_network", "JoyVASAFiles", "GENERATOR_REMOTE", "TEMPLATE_REMOTE", "PE_MODES"]
