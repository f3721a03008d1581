"""Smoothing over time: filters for per-frame tensors (keypoints, expression, angles, ratios) and
:func:`smooth_motion`, which applies them to a MOTION.

Every filter works on a tensor ``x`` of shape [T, ...]: time is dimension 0, all other
dimensions are independent channels.  Maths is vectorised over the channels; only time
is looped over (in numpy float64: cheaper per step than torch); the result has ``x``'s
dtype and device.

* :func:`one_euro` -- the One-Euro filter (Casiez et al. 2012): a low-pass whose cutoff
  rises with speed (``min_cutoff`` Hz at rest, ``+ beta * speed``), so slow drift is
  smoothed hard while fast, real motion keeps little lag.  Offline we run it forward and
  then backward (``zero_phase=True``, ends extended by odd reflection) so the result has
  no delay.
* :func:`kalman_smooth` -- a constant-velocity Kalman filter followed by a
  Rauch-Tung-Striebel backward pass (optimal offline smoother for that model).
* :func:`smooth` -- one ``strength`` knob in [0, 1] mapped onto either filter
  (0 returns the input unchanged, 1 is very smooth).
* :func:`smooth_motion` -- :func:`smooth` on a MOTION's expression, pose and chosen extras.
"""

import math

import numpy as np
import torch

from ...errors import InputError
from .common import done

METHODS = ("one_euro", "kalman")
# strength 0 -> cutoff at the Nyquist frequency, strength 1 -> MIN_CUTOFF_HZ (log scale).
MIN_CUTOFF_HZ = 0.25


def _check_x(x, name="x"):
    x = torch.as_tensor(x)
    if x.dim() == 0 or x.shape[0] == 0:
        raise InputError("%s must have at least one frame along dimension 0, got shape %s."
                         % (name, tuple(x.shape)))
    if not x.is_floating_point():
        x = x.float()
    return x


def _check_fps(fps):
    if not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise InputError("fps must be a positive number, got %r." % (fps,))
    return float(fps)


def _alpha(cutoff, fps):
    """Smoothing factor of a one-pole low-pass with ``cutoff`` Hz sampled at ``fps``."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * fps)


def _one_euro_pass(x, fps, min_cutoff, beta, d_cutoff, speed_unit):
    """One causal One-Euro pass over x [T, C] (numpy float64; small per-step arrays are
    cheaper in numpy than in torch)."""
    out = np.empty_like(x)
    prev = x[0].copy()
    d_prev = np.zeros_like(prev)
    a_d = _alpha(d_cutoff, fps)
    tau_fps = fps / (2.0 * math.pi)          # tau * fps = tau_fps / cutoff
    out[0] = prev
    for i in range(1, x.shape[0]):
        d_prev += a_d * ((x[i] - prev) * fps - d_prev)
        a = 1.0 / (1.0 + tau_fps / (min_cutoff + beta * np.abs(d_prev) / speed_unit))
        prev += a * (x[i] - prev)
        out[i] = prev
    return out


def one_euro(x, fps, min_cutoff=1.0, beta=0.0, d_cutoff=1.0, zero_phase=True):
    """One-Euro filter along dimension 0 of ``x`` [T, ...].

    min_cutoff: cutoff in Hz when the signal is at rest (lower = smoother).
    beta: how fast the cutoff rises with speed.  Speed is measured in units of the
        tensor's own spread (standard deviation over time, averaged over channels) per
        second, so one ``beta`` suits degrees, keypoints and expression alike.
    d_cutoff: cutoff (Hz) of the speed estimate.
    zero_phase: run forward then backward (no lag; what offline motion wants).
    """
    x = _check_x(x)
    fps = _check_fps(fps)
    for name, value in (("min_cutoff", min_cutoff), ("d_cutoff", d_cutoff)):
        if not math.isfinite(value) or value <= 0:
            raise InputError("one_euro %s must be a positive frequency in Hz, got %r." % (name, value))
    if not math.isfinite(beta) or beta < 0:
        raise InputError("one_euro beta must be >= 0, got %r." % (beta,))
    flat = x.detach().cpu().reshape(x.shape[0], -1).double().numpy()
    speed_unit = float(flat.std(axis=0).mean()) + 1e-12
    if zero_phase:
        # Odd reflection at both ends (as filtfilt does) so a trend continues through the
        # edges instead of the filter settling there; about three time constants of padding.
        pad = min(flat.shape[0] - 1, int(math.ceil(3.0 * fps / (2.0 * math.pi * min_cutoff))))
        padded = np.concatenate([2 * flat[:1] - flat[1:pad + 1][::-1], flat,
                                 2 * flat[-1:] - flat[flat.shape[0] - 1 - pad:-1][::-1]])
        y = _one_euro_pass(padded, fps, min_cutoff, beta, d_cutoff, speed_unit)
        y = _one_euro_pass(y[::-1].copy(), fps, min_cutoff, beta, d_cutoff, speed_unit)[::-1]
        y = y[pad:pad + flat.shape[0]]
    else:
        y = _one_euro_pass(flat, fps, min_cutoff, beta, d_cutoff, speed_unit)
    return torch.from_numpy(np.ascontiguousarray(y)).reshape(x.shape).to(device=x.device, dtype=x.dtype)


def _kalman_gains(n, dt, q_over_r):
    """Filter and smoother gains of the constant-velocity model, shared by every channel.

    State (position, velocity); measurement = position with variance 1 (the gains depend
    only on q/r, so unit measurement noise loses nothing); white acceleration noise of
    spectral density q_over_r.  Returns (Kalman gains [n,2], RTS smoother gains [n-1,2,2]).
    """
    f = np.array([[1.0, dt], [0.0, 1.0]])
    q = q_over_r * np.array([[dt ** 3 / 3.0, dt ** 2 / 2.0], [dt ** 2 / 2.0, dt]])
    gains = np.zeros((n, 2))
    p_pred = np.zeros((n, 2, 2))
    p_filt = np.zeros((n, 2, 2))
    p = np.diag([1e6, 1e6])            # first frame: position measured, velocity unknown
    for i in range(n):
        if i > 0:
            p = f @ p_filt[i - 1] @ f.T + q
        p_pred[i] = p
        k = p[:, 0] / (p[0, 0] + 1.0)
        gains[i] = k
        p_filt[i] = p - k[:, None] * p[0:1, :]
    smoother = p_filt[:-1] @ f.T @ np.linalg.inv(p_pred[1:])
    return gains, smoother


def kalman_smooth(x, fps, q_over_r=100.0):
    """Constant-velocity Kalman filter + RTS smoother along dimension 0 of ``x`` [T, ...].

    q_over_r: acceleration-noise density over measurement-noise variance (1/s^3).  Large =
    trust the measurements (little smoothing); small = trust the model (smooth).  Its
    effective cutoff is roughly (q_over_r ** 0.25) / (2*pi) Hz.
    """
    x = _check_x(x)
    fps = _check_fps(fps)
    if not math.isfinite(q_over_r) or q_over_r <= 0:
        raise InputError("kalman q_over_r must be a positive number, got %r." % (q_over_r,))
    z = x.detach().cpu().reshape(x.shape[0], -1).double().numpy()
    n, dt = z.shape[0], 1.0 / fps
    gains, smoother = _kalman_gains(n, dt, q_over_r)
    # Forward pass, every channel with the same gains: position pos [T,C], velocity vel [T,C].
    pos, vel = np.empty_like(z), np.empty_like(z)
    p, v = z[0].copy(), np.zeros_like(z[0])
    for i in range(n):
        if i > 0:
            p = p + dt * v
        err = z[i] - p
        p, v = p + gains[i, 0] * err, v + gains[i, 1] * err
        pos[i], vel[i] = p, v
    # Backward (Rauch-Tung-Striebel) pass: x_i += C_i (x_s,i+1 - F x_i).
    sp, sv = pos[-1].copy(), vel[-1].copy()
    out = np.empty_like(z)
    out[-1] = sp
    for i in range(n - 2, -1, -1):
        dp, dv = sp - (pos[i] + dt * vel[i]), sv - vel[i]
        c = smoother[i]
        sp, sv = pos[i] + c[0, 0] * dp + c[0, 1] * dv, vel[i] + c[1, 0] * dp + c[1, 1] * dv
        out[i] = sp
    return torch.from_numpy(out).reshape(x.shape).to(device=x.device, dtype=x.dtype)


def strength_cutoff(strength, fps):
    """Cutoff frequency (Hz) for a smoothing ``strength`` in (0, 1]: log-linear from the
    Nyquist frequency (fps / 2) at 0 down to ``MIN_CUTOFF_HZ`` at 1."""
    high = fps / 2.0
    low = min(MIN_CUTOFF_HZ, high)
    return math.exp((1.0 - strength) * math.log(high) + strength * math.log(low))


def smooth(x, fps, strength=0.5, method="one_euro", beta=0.1):
    """Smooth ``x`` [T, ...] along time with one ``strength`` knob in [0, 1].

    strength 0 returns an exact copy of ``x``; higher values lower the cutoff frequency
    (see :func:`strength_cutoff`).  method "one_euro" (adaptive, keeps fast moves; ``beta``
    as in :func:`one_euro`) or "kalman" (constant-velocity Kalman + RTS smoother with
    q/r = (2*pi*cutoff)**4).
    """
    if not isinstance(strength, (int, float)) or not (0.0 <= strength <= 1.0):
        raise InputError("smoothing strength must be between 0 and 1, got %r." % (strength,))
    if method not in METHODS:
        raise InputError("smoothing method must be one of %s, got %r." % (", ".join(METHODS), method))
    x = _check_x(x)
    fps = _check_fps(fps)
    if strength == 0 or x.shape[0] < 3:
        return x.clone()
    cutoff = strength_cutoff(float(strength), fps)
    if method == "one_euro":
        return one_euro(x, fps, min_cutoff=cutoff, beta=beta)
    return kalman_smooth(x, fps, q_over_r=(2.0 * math.pi * cutoff) ** 4)


def smooth_motion(motion, strength=0.5, method="one_euro", expression=True, pose=True, extras=(), beta=0.1):
    """Smooth the motion over time (see :func:`smooth`).

    expression: smooth exp; pose: smooth pitch/yaw/roll/t/scale; extras: names of extra
    tensors to smooth too (eye/lip targets are left alone by default so blinks stay crisp).
    strength 0 returns the motion unchanged.
    """
    unknown = [k for k in extras if k not in motion.extra]
    if unknown:
        raise InputError("MOTION has no extras %s to smooth (it has %s)." % (unknown, sorted(motion.extra)))
    if strength == 0 or (not expression and not pose and not extras):
        return motion
    run = lambda x: smooth(x, motion.fps, strength, method, beta)
    changes = {}
    if expression:
        changes["exp"] = run(motion.exp)
    if pose:
        packed = torch.cat([motion.pitch[:, None], motion.yaw[:, None], motion.roll[:, None], motion.t,
                            motion.scale[:, None]], dim=1)
        # Angles (degrees) and t/scale (keypoint units) differ in size: filter them apart so
        # the one-euro speed normalisation sees each at its own scale.
        angles, rest = run(packed[:, :3]), run(packed[:, 3:])
        changes.update(pitch=angles[:, 0], yaw=angles[:, 1], roll=angles[:, 2], t=rest[:, :3], scale=rest[:, 3])
    if extras:
        changes["extra"] = {k: (run(v) if k in extras else v) for k, v in motion.extra.items()}
    return done(motion, "smooth(%s,%g)" % (method, strength), **changes)
