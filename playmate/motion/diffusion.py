"""Diffusion maths as pure functions: cosine schedule, forward noising, DDIM, nested CFG.

Conventions: ``T`` training steps, timesteps ``t = 0 .. T-1`` (t = 0 is the least noisy);
``alpha_bar[t] = prod_{i <= t} (1 - beta_i)`` with the cosine schedule of Nichol & Dhariwal
(2021).  The network predicts the noise ``eps`` (as in the Playmate paper):
``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``.

Randomness only comes from an explicit ``torch.Generator`` (never the global RNG), drawn on the
CPU so a seed gives the same numbers on every device.
"""

import math

import torch


def cosine_alpha_bar(num_steps=1000, s=0.008, max_beta=0.999):
    """alpha_bar [T] (float64) of the cosine schedule, betas clipped at ``max_beta``."""
    f = lambda x: math.cos((x / num_steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = torch.tensor([min(1 - f(i + 1) / f(i), max_beta) for i in range(num_steps)], dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


def q_sample(x0, t, noise, alpha_bar):
    """Noised sample x_t for per-item timesteps ``t`` [B] (x0, noise [B, ...])."""
    ab = alpha_bar.to(x0.device)[t].to(x0.dtype).reshape((-1,) + (1,) * (x0.dim() - 1))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def predict_x0(x_t, eps, ab_t):
    """x_0 implied by the noise prediction at a step with alpha_bar ``ab_t`` (a float)."""
    return (x_t - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)


def ddim_timesteps(num_train_steps, steps):
    """``steps`` descending timesteps with "leading" spacing: ``(steps-1-i) * T // steps``.

    For 25 of 1000 steps: 960, 920, ..., 40, 0.  Starting below T-1 keeps the first step well
    conditioned: with the cosine schedule alpha_bar[T-1] is ~2e-9, where an eps prediction
    says next to nothing about x_0.
    """
    if not 1 <= int(steps) <= num_train_steps:
        raise ValueError("steps must be in 1..%d, got %r" % (num_train_steps, steps))
    steps = int(steps)
    return [(steps - 1 - i) * num_train_steps // steps for i in range(steps)]


def ddim_step(x_t, eps, ab_t, ab_prev, eta=0.0, noise=None, clip_x0=None):
    """One DDIM update from alpha_bar ``ab_t`` to ``ab_prev`` (floats; ab_prev = 1 ends at x_0).

    ``eta`` = 0 is deterministic DDIM, 1 matches ancestral DDPM's variance; ``noise`` is
    required when the step's sigma is non-zero.  ``clip_x0`` clamps the predicted x_0 to
    [-clip_x0, clip_x0] (and re-derives eps from it), as DDPM's ``clip_denoised`` does.
    """
    x0 = predict_x0(x_t, eps, ab_t)
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
        eps = (x_t - math.sqrt(ab_t) * x0) / math.sqrt(1 - ab_t)
    sigma = eta * math.sqrt(max(0.0, (1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)))
    direction = math.sqrt(max(0.0, 1 - ab_prev - sigma ** 2)) * eps
    x_prev = math.sqrt(ab_prev) * x0 + direction
    if sigma > 0:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs noise")
        x_prev = x_prev + sigma * noise
    return x_prev


def ddim_sample(eps_fn, x_T, alpha_bar, steps, eta=0.0, generator=None, progress=None, clip_x0=None):
    """Run DDIM from ``x_T``: ``eps_fn(x_t, t:int) -> eps``; returns x_0.

    Stochastic steps (eta > 0) draw their noise from ``generator`` on the CPU.
    ``progress(i)`` is called after step i (1-based); ``clip_x0`` as in :func:`ddim_step`.
    """
    ts = ddim_timesteps(alpha_bar.shape[0], steps)
    x = x_T
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        ab_t = float(alpha_bar[t])
        ab_prev = float(alpha_bar[t_prev]) if t_prev >= 0 else 1.0
        eps = eps_fn(x, t)
        noise = None
        if eta > 0 and t_prev >= 0:
            noise = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x)
        x = ddim_step(x, eps, ab_t, ab_prev, eta, noise, clip_x0)
        if progress is not None:
            progress(i + 1)
    return x


def nested_cfg(e_00, e_a0, e_ae=None, w_a=1.5, w_e=1.5):
    """Nested guidance: e(0,0) + w_a [e(a,0) - e(0,0)] + w_e [e(a,e) - e(a,0)].

    ``e_ae`` None (no emotion branch) drops the emotion term exactly.
    """
    out = e_00 + w_a * (e_a0 - e_00)
    if e_ae is not None:
        out = out + w_e * (e_ae - e_a0)
    return out
