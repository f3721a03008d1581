"""JoyVASA's sampler: ancestral DDPM with x0 prediction, windowed like upstream ``gen_motion_sequence``.

Each window of ``n_motions`` frames is conditioned on the previous window's last ``n_prev``
motion frames and audio features (learned start features for the first window); all windows
start from the same x_T (upstream reuses window 0's draw).  The schedule is the cosine one
stored in the file; audio classifier-free guidance is ``u + s * (c - u)``.

Randomness comes only from ``draw(shape)`` (a float32 CPU tensor per call): x_T first, then
per window one draw per step that goes to t > 0 -- :func:`playmate.motion.generator.seeded_draws` for generation.
"""

import torch


def schedule_steps(net, steps=None):
    """Descending time steps T..1 used by the sampler (all T, or ``steps`` evenly strided)."""
    total = net.diffusion_sched.betas.shape[0] - 1
    if steps is None or int(steps) == total:
        return list(range(total, 0, -1))
    return [int(t) for t in torch.linspace(total, 1, int(steps), dtype=torch.float64).round().long()]


def branch_memory(net, audio_feat, prev_audio, cfg):
    """Cross-attention context for the CFG batch [uncond (null audio), cond]; cond only if cfg == 1."""
    null = net.null_audio_feat.expand(1, net.n_motions, -1)
    audio = audio_feat if cfg == 1 else torch.cat([null, audio_feat], dim=0)
    memory = torch.cat([prev_audio.expand(audio.shape[0], -1, -1), audio], dim=1)
    return net.denoising_net.prepare_memory(memory)


def guided(net, x_t, step, prev_motion, cross, cfg, pe):
    """CFG x0 estimate [1, L, D] and the raw denoiser batch ([uncond, cond] or [cond])."""
    nb = len(cross[0]) if isinstance(cross, list) else cross.shape[0]
    steps = torch.full((nb,), int(step), dtype=torch.long, device=x_t.device)
    raw = net.denoising_net(x_t.expand(nb, -1, -1), prev_motion.expand(nb, -1, -1), steps, cross, pe)
    out = raw[:, -net.n_motions:].float()
    if nb == 1:
        return out, raw
    u, c = out[0:1], out[1:2]
    return u + cfg * (c - u), raw


def denoise_steps(net, audio_feat, prev_motion, prev_audio, x_T, draw, *, cfg, pe, timesteps):
    """Ancestral sampling of one window, step by step: yields (t, s, x_s, raw) for every step
    t -> s of ``timesteps`` (x_s float32 [1, n_motions, D]; raw: the denoiser batch at t).

    ``draw(shape)`` serves the Gaussian draws (one per step that goes to s > 0).
    """
    sched = {k: getattr(net.diffusion_sched, k).detach().float().cpu() for k in ("alphas", "alpha_bars",
                                                                                  "sigmas_inflex")}
    dtype = net.audio_feature_map.weight.dtype
    cross = branch_memory(net, audio_feat.to(dtype), prev_audio.to(dtype), cfg)
    prev_motion = prev_motion.to(dtype)
    x = x_T.float()
    for k, t in enumerate(timesteps):
        s = timesteps[k + 1] if k + 1 < len(timesteps) else 0
        x0, raw = guided(net, x.to(dtype), t, prev_motion, cross, cfg, pe)
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
        yield t, s, x, raw


def sample_windows(net, audio, layout, encode, draw, *, cfg, pe, timesteps, on_step=None):
    """Upstream's windowed sampling of the padded clip ``audio`` [S] (on the network's device).

    ``layout``: the clip's :class:`~playmate.motion.joyvasa.generator.AudioLayout`;
    ``encode(samples)``: audio features [1, n_motions, d] of one window of samples.
    Returns [(features, x_0 [1, n_motions, D])] per window.  ``on_step()`` is called after
    every denoising step.
    """
    prev_motion, prev_audio, x_T, windows = net.start_motion_feat, net.start_audio_feat, None, []
    for w in range(layout.n_windows):
        lo, hi = round(w * net.n_motions * layout.unit), round((w + 1) * net.n_motions * layout.unit)
        feats = encode(audio[lo:hi])
        if x_T is None:
            x_T = draw((1, net.n_motions, net.motion_dim)).to(audio.device)
        for _, _, x0, _ in denoise_steps(net, feats, prev_motion, prev_audio, x_T, draw, cfg=cfg, pe=pe,
                                         timesteps=timesteps):
            if on_step is not None:
                on_step()
        prev_motion, prev_audio = x0[:, -net.n_prev:], feats[:, -net.n_prev:]
        windows.append((feats, x0))
    return windows
