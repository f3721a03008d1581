"""Ditto's diffusion schedule, guidance and DDIM sampler (``LMDM.setup`` / ``ddim_sample``).

Schedule (T = 1000, cosine, s = 0.008): ``a(k) = cos^2((k/T + s)/(1 + s) * pi/2)`` for k = 0..T in
float64, ``a /= a[0]``, ``betas = clip(1 - a[1:]/a[:-1], 0, 0.999)``; then in float32
``alphas_cumprod = cumprod(1 - betas)``.

Sampling with S steps: ``times = reversed(int(linspace(-1, T-1, S+1)))`` (float32 linspace,
truncated toward 0), pairs (t, t'); for t' >= 0 ``sigma = sqrt((1 - a_t/a_t')(1 - a_t')/(1 - a_t))``
(eta 1), ``c = sqrt(1 - a_t' - sigma^2)`` and a noise draw z_k made *once per run* (every window
reuses it); x_T is drawn per window.  Each step: ``x0`` = guided prediction, ``noise = x_t
sqrt(1/(1-a_t)) - x0 / sqrt(1/a_t - 1)``, ``x = x0`` at the last step else ``x0 sqrt(a_t') + c
noise + sigma z_k``.

Guidance (nested): ``x0 = u + (n - u) w_a + (e - n) w_e`` with u the unconditional branch, n the
conditional branch whose emotion columns hold the neutral condition, e the conditional branch.
With ``w_a == w_e`` (or when the emotion columns are neutral, so e == n) this is computed as
the release computes its single weight, ``u + (e - u) w``, with two forward calls.

Random numbers come from one ``draw(shape) -> float32 tensor`` callable
(:func:`playmate.motion.generator.seeded_draws` for generation, ``stored_draws`` for parity),
always in the release's order: the S-1 step draws first, then x_T of each window.
"""

import numpy as np
import torch

N_TIMESTEPS = 1000
COSINE_S = 8e-3


def alphas_cumprod(n=N_TIMESTEPS, s=COSINE_S):
    k = np.arange(n + 1, dtype=np.float64) / n + s
    a = np.cos(k / (1 + s) * np.pi / 2) ** 2
    a = a / a[0]
    betas = np.clip(1 - a[1:] / a[:-1], 0, 0.999)
    return torch.cumprod(1.0 - torch.from_numpy(betas).float(), dim=0)


def time_pairs(steps, n=N_TIMESTEPS):
    times = torch.linspace(-1, n - 1, steps=int(steps) + 1).int().tolist()[::-1]
    return list(zip(times[:-1], times[1:]))


class Plan:
    """The per-step coefficients of S-step DDIM (float32 scalars, as the release)."""

    def __init__(self, alphas, steps):
        self.alphas = alphas
        self.pairs = time_pairs(steps, alphas.shape[0])
        self.sqrt_recip1m = torch.sqrt(1.0 / (1.0 - alphas))
        self.sqrt_recipm1 = torch.sqrt(1.0 / alphas - 1)
        self.alpha_next_sqrt, self.sigma, self.c = [], [], []
        for t, t_next in self.pairs:
            if t_next < 0:
                continue
            a, a_next = alphas[t], alphas[t_next]
            sigma = ((1 - a / a_next) * (1 - a_next) / (1 - a)).sqrt()
            self.alpha_next_sqrt.append(a_next.sqrt())
            self.sigma.append(sigma)
            # clamped: in float32 the difference can round below 0 (e.g. 5 steps: 999 -> 799), where the
            # release's sqrt gives NaN; positive values are unchanged
            self.c.append((1 - a_next - sigma ** 2).clamp(min=0).sqrt())

    @property
    def n_noise(self):
        return len(self.c)


def guided_x0(net, x, cond_frame, cond, t, w_a, w_e, cond_neutral=None):
    """Guided x0 (see the module docstring): the branches in one batched network call, 2 of them when
    w_a == w_e or ``cond_neutral`` is None (neutral emotion), else 3."""
    if w_a == w_e or cond_neutral is None:
        u, e = net.branches(x, cond_frame, [cond], t).split(1)
        return u + (e - u) * w_a
    u, e, n = net.branches(x, cond_frame, [cond, cond_neutral], t).split(1)
    return u + (n - u) * w_a + (e - n) * w_e


class Sampler:
    """DDIM for one run: the step noises are drawn at construction, x_T per :meth:`sample` call."""

    def __init__(self, net, steps, draw, w_a, w_e):
        self.net = net
        self.plan = Plan(alphas_cumprod(), steps)
        self.shape = (1, net.sizes.seq_frames, net.sizes.motion_dim)
        self.draw = draw
        self.z = [draw(self.shape).to(net.device) for _ in range(self.plan.n_noise)]
        self.w_a, self.w_e = float(w_a), float(w_e)

    @torch.no_grad()
    def denoise_steps(self, kp_cond, cond, cond_neutral=None):
        """One window step by step: draws x_T, then yields ``(t, x_t, x0)`` for every step t (x_t the
        step's input [1,L,D], x0 its guided prediction, on the network's device); the window's result
        is the last x0.  kp_cond [1,D], cond [1,L,C] and its neutral-emotion twin (or None)."""
        dev = self.net.device
        plan = self.plan
        x = self.draw(self.shape).to(dev)
        kp_cond, cond = kp_cond.to(dev), cond.to(dev)
        cond_neutral = None if cond_neutral is None else cond_neutral.to(dev)
        i = 0
        for t, t_next in plan.pairs:
            tt = torch.full((1,), t, dtype=torch.long, device=dev)
            x0 = guided_x0(self.net, x, kp_cond, cond, tt, self.w_a, self.w_e, cond_neutral)
            yield t, x, x0
            if t_next >= 0:  # (0-d CPU coefficients combine with tensors on any device)
                noise = predicted_noise(plan, x, x0, t)
                x = x0 * plan.alpha_next_sqrt[i] + plan.c[i] * noise + plan.sigma[i] * self.z[i]
                i += 1

    def sample(self, kp_cond, cond, cond_neutral=None, on_step=None):
        """x0 [1,L,D] (float32, CPU) of one window (:meth:`denoise_steps`); ``on_step()`` after every step."""
        for _, _, x0 in self.denoise_steps(kp_cond, cond, cond_neutral):
            if on_step is not None:
                on_step()
        return x0.float().cpu()


def predicted_noise(plan, x, x0, t):
    """The release's ``predict_noise_from_start`` at step t."""
    return x * plan.sqrt_recip1m[t] - x0 / plan.sqrt_recipm1[t]
