"""A synthetic JoyVASA release for tests and ``write-test-models`` (NOT the real model).

:func:`write_test_joyvasa` writes the released layout::

    FOLDER/motion_generator/motion_generator_hubert_chinese.pt   torch.save {"args": Namespace, "model", "iter"}
    FOLDER/motion_template/motion_template.pkl                   pickle of float32 numpy arrays (numpy 1.x names)

through :func:`playmate.parity.joyvasa.write_release`, so the real loader runs every step on it
(the allow-listed unpickling of ``argparse.Namespace`` / ``PosixPath``, the numpy-1 template
pickle, the weight-norm keys, the conversion to safetensors).  The network is the project's own
:class:`~playmate.motion.joyvasa.network.JoyVASANet` with seeded random weights and a SMALL
configuration (:data:`SMALL`): the release's layout (73-d motion, 10 + 100 frame windows at 25 fps,
a 7-layer HuBERT conv front end with chinese-hubert-base's kernels and strides, 12 HuBERT heads,
8 denoiser heads, cosine schedule) with narrow widths and two layers each, so it loads in well
under a second and samples a window in about a second on a CPU.  Its motion is meaningless.

The schedule, the sinusoid tables and the diagonal alignment mask are written as upstream's
code computes them (the loader takes them from the file, as the reference does).
"""

import json
import math
from pathlib import Path

import numpy as np
import torch

from ..motion.joyvasa.files import TEMPLATE_KEYS

#: sizes of the synthetic release (the real one: hubert 768 x 12 layers, conv 512, denoiser 256 x 8 layers)
SMALL = {
    "motion_feat_dim": 73, "n_prev_motions": 10, "n_motions": 100, "fps": 25, "n_diff_steps": 50,
    "feature_dim": 32,          # denoiser width (8 heads: a multiple of 8)
    "denoiser_layers": 2, "denoiser_ffn": 64, "motion_dec_hidden": 16, "pe_len": 600,
    "hubert_hidden": 24,        # 12 heads (chinese-hubert-base's, not stored in the file): a multiple of 12
    "hubert_layers": 2, "hubert_ffn": 48, "hubert_conv": 32,
    "hubert_pos_kernel": 16, "hubert_pos_groups": 4,
}
TE_LEN = 501  # DenoisingNetwork's own time table (500 steps + 1)


def cosine_schedule(n_steps, s=0.008):
    """Upstream's cosine schedule (float32): dict of the five ``diffusion_sched`` buffers [n_steps + 1]."""
    x = torch.arange(0, n_steps + 1, dtype=torch.float32)
    f = torch.cos(((x / n_steps) + s) / (1 + s) * math.pi / 2) ** 2
    f = f / f[0]
    betas = torch.cat([torch.zeros(1), (1 - f[1:] / f[:-1]).clamp(1e-4, 0.999)])
    alphas = 1 - betas
    alpha_bars = torch.cumsum(torch.log(alphas), 0).exp()
    sigmas_flex = torch.sqrt(betas)
    sigmas_inflex = torch.zeros_like(betas)
    sigmas_inflex[1:] = torch.sqrt((1 - alpha_bars[:-1]) / (1 - alpha_bars[1:]) * betas[1:])
    return {"betas": betas, "alphas": alphas, "alpha_bars": alpha_bars, "sigmas_flex": sigmas_flex,
            "sigmas_inflex": sigmas_inflex}


def small_hubert_config(sizes=SMALL):
    """chinese-hubert-base's architecture (the shipped JSON) at the small sizes."""
    from ..motion.joyvasa.network import HUBERT_CONFIG_FILE
    from transformers import HubertConfig
    cfg = json.loads(HUBERT_CONFIG_FILE.read_text())
    cfg.pop("_comment", None)
    cfg.update(conv_dim=[sizes["hubert_conv"]] * len(cfg["conv_stride"]), hidden_size=sizes["hubert_hidden"],
               num_hidden_layers=sizes["hubert_layers"], intermediate_size=sizes["hubert_ffn"],
               num_conv_pos_embeddings=sizes["hubert_pos_kernel"],
               num_conv_pos_embedding_groups=sizes["hubert_pos_groups"])
    return HubertConfig(**cfg)


def synthetic_release(seed=0, sizes=SMALL):
    """(state dict name -> float32/bool ndarray, args dict, template dict) of a small random JoyVASA."""
    from ..motion.joyvasa.network import JoyVASANet, sinusoid_table
    torch.manual_seed(seed)
    dim, motion_dim = sizes["feature_dim"], sizes["motion_feat_dim"]
    n_prev, n_motions = sizes["n_prev_motions"], sizes["n_motions"]
    net = JoyVASANet(small_hubert_config(sizes), motion_dim=motion_dim, dim=dim, n_prev=n_prev,
                     n_motions=n_motions, fps=sizes["fps"], n_layers=sizes["denoiser_layers"],
                     ffn=sizes["denoiser_ffn"], dec_hidden=sizes["motion_dec_hidden"], pe_len=sizes["pe_len"],
                     te_len=TE_LEN, n_steps=sizes["n_diff_steps"], audio_dim=sizes["hubert_hidden"])
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        # learned context / guidance features (zeros in the module): small random values
        net.start_motion_feat.copy_(0.3 * torch.randn(net.start_motion_feat.shape, generator=g))
        net.start_audio_feat.copy_(0.3 * torch.randn(net.start_audio_feat.shape, generator=g))
        net.null_audio_feat.copy_(0.3 * torch.randn(net.null_audio_feat.shape, generator=g))
        den = net.denoising_net
        den.PE.pe.copy_(sinusoid_table(sizes["pe_len"], dim))
        den.TE.pe.copy_(sinusoid_table(TE_LEN, dim))
        seq = n_prev + n_motions
        den.alignment_mask.copy_(~torch.eye(seq, dtype=torch.bool))   # True = masked: token i sees audio frame i
        for name, value in cosine_schedule(sizes["n_diff_steps"]).items():
            getattr(net.diffusion_sched, name).copy_(value)
    state = {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
    args = {
        # the six fields the reference builds from (checked by our loader against the tensors)
        "motion_feat_dim": motion_dim, "n_motions": n_motions, "n_prev_motions": n_prev, "feature_dim": dim,
        "audio_model": "hubert_zh", "n_diff_steps": sizes["n_diff_steps"],
        # fields the release carries that the reference ignores (see the README's traps)
        "fps": sizes["fps"], "rot_repr": "emo", "pad_mode": "zero", "n_layers": 6, "use_indicator": True,
        "no_use_learnable_pe": False, "diff_schedule": "cosine", "target": "sample", "cfg_mode": "incremental",
        "data_root": "/synthetic/playmate-write-test-models",   # a PosixPath in the file, as in the release
        "exp_name": "SYNTHETIC-random-weights", "seed": int(seed),
    }
    return state, args, synthetic_template(seed)


def synthetic_template(seed=0):
    """A motion template with the 12 entries inference reads (plausible LivePortrait ranges) plus a few
    the release also carries; float32 1-D arrays."""
    rng = np.random.default_rng(seed + 2)
    t = {"mean_exp": 0.01 * rng.standard_normal(63), "std_exp": 0.02 + 0.01 * rng.random(63),
         "min_scale": [1.2], "max_scale": [1.6], "min_t": [-0.05, -0.05, -0.02], "max_t": [0.05, 0.05, 0.02],
         "min_pitch": [-15.0], "max_pitch": [15.0], "min_yaw": [-20.0], "max_yaw": [20.0],
         "min_roll": [-10.0], "max_roll": [10.0]}
    t.update({"mean_scale": [1.4], "std_scale": [0.05], "mean_t": [0.0, 0.0, 0.0], "std_t": [0.02, 0.02, 0.01]})
    assert set(TEMPLATE_KEYS) <= set(t)
    return {k: np.asarray(v, np.float32).reshape(-1) for k, v in t.items()}


def write_test_joyvasa(folder, seed=0, sizes=SMALL):
    """Write the synthetic release under ``folder`` (see the module docstring); returns (pt, pkl)."""
    from .joyvasa import write_release
    state, args, template = synthetic_release(seed, sizes)
    pt, pkl = write_release(Path(folder), state, args, template)
    (Path(folder) / "SYNTHETIC.txt").write_text(
        "SYNTHETIC JoyVASA release: random weights (seed %d) of the project's own network at small sizes %s. "
        "NOT the real jdh-algo/JoyVASA model: its motion is meaningless.\n" % (seed, sizes))
    return pt, pkl

