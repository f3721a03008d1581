"""LivePortrait's implicit-keypoint maths (pure torch, batched, no loops).

Conventions (as in the official code and the golden cases):
* angles in degrees; 21 keypoints in normalised [-1, 1] volume coordinates;
* row vectors: a keypoint set ``kp`` [B,21,3] is rotated as ``kp @ R``;
* ``R = (Rz(roll) @ Ry(yaw) @ Rx(pitch))^T``.
"""

import math

import torch

NUM_KP = 21
POSE_BINS = 66


def headpose_degrees(logits):
    """66-bin head-pose logits [..., 66] -> degrees [...]: 3*sum(i*softmax_i) - 97.5."""
    idx = torch.arange(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return 3.0 * (torch.softmax(logits, dim=-1) * idx).sum(dim=-1) - 97.5


def rotation_matrix(pitch, yaw, roll):
    """Angles in degrees (any matching shapes [...]) -> R [..., 3, 3] (row-vector convention)."""
    p, y, r = (torch.as_tensor(a) * (math.pi / 180.0) for a in (pitch, yaw, roll))
    p, y, r = torch.broadcast_tensors(p, y, r)
    one, zero = torch.ones_like(p), torch.zeros_like(p)
    cp, sp, cy, sy, cr, sr = p.cos(), p.sin(), y.cos(), y.sin(), r.cos(), r.sin()
    rx = torch.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).unflatten(-1, (3, 3))
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).unflatten(-1, (3, 3))
    rz = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).unflatten(-1, (3, 3))
    return (rz @ ry @ rx).transpose(-1, -2)


def transform_keypoint(kp, exp, rot, t, scale, translate_z=False):
    """x = s*(x_c @ R + exp); x[..., :2] += t[..., :2] (t_z is unused).

    kp, exp: [B,21,3]; rot: [B,3,3]; t: [B,3]; scale: [B] or [B,1].
    ``translate_z=True`` adds all of t, as upstream's pose-editing path does (section (h) of the
    golden README); animation uses the default.
    """
    scale = scale.reshape(-1, 1, 1)
    x = scale * (kp @ rot + exp)
    if translate_z:
        return x + t[:, None, :]
    return torch.cat([x[..., :2] + t[:, None, :2], x[..., 2:]], dim=-1)


def edited_rotation(pitch, yaw, roll, d_pitch=0.0, d_yaw=0.0, d_roll=0.0):
    """Rotation for a head-pose edit, as upstream computes it: (R_u @ R_s^T) @ R_s.

    R_s = R(pitch, yaw, roll) is the source pose, R_u = R(pitch + d_pitch, ...) the edited one
    (degrees).  Mathematically this is R_u; the product is kept for bit-level parity.
    """
    r_src = rotation_matrix(pitch, yaw, roll)
    r_user = rotation_matrix(torch.as_tensor(pitch) + d_pitch, torch.as_tensor(yaw) + d_yaw,
                             torch.as_tensor(roll) + d_roll)
    return (r_user @ r_src.transpose(-1, -2)) @ r_src


def stitching_input(kp_source, kp_driving):
    """Input of the stitching MLP: concat(kp_source.flat, kp_driving.flat) -> [B,126]."""
    return torch.cat([kp_source.flatten(1), kp_driving.flatten(1)], dim=1)


def apply_stitching(kp_driving, delta):
    """kp_driving [B,K,3] + delta[:, :3K] as K x 3, then x, y of every point += delta[:, 3K:3K+2]."""
    b, k, _ = kp_driving.shape
    moved = kp_driving + delta[:, :3 * k].reshape(b, k, 3)
    shift = delta[:, 3 * k:3 * k + 2].reshape(b, 1, 2)
    return torch.cat([moved[..., :2] + shift, moved[..., 2:]], dim=-1)


def retargeting_input(kp_source, ratio):
    """Input of the eye / lip MLP: concat(kp_source.flat, ratio) -> [B, 3K + ratio columns]."""
    return torch.cat([kp_source.flatten(1), ratio.reshape(kp_source.shape[0], -1).to(kp_source.dtype)], dim=1)


def eye_ratio_input(source_eye_ratios, target_eye_ratio):
    """[B,2] (left, right eye opening of the source) + target [B] -> [B,3] eye-MLP ratio input.

    Eye ratios are eye opening / eye width measured on the source's landmarks; the target is
    the wanted opening (e.g. taken from a driving frame, 0 to close the eyes).
    """
    b = source_eye_ratios.shape[0]
    target = torch.as_tensor(target_eye_ratio, dtype=source_eye_ratios.dtype,
                             device=source_eye_ratios.device).reshape(-1, 1).expand(b, 1)
    return torch.cat([source_eye_ratios.reshape(b, 2), target], dim=1)


def lip_ratio_input(source_lip_ratio, target_lip_ratio):
    """Source lip opening [B] + target [B] -> [B,2] lip-MLP ratio input (mouth opening / width)."""
    source = torch.as_tensor(source_lip_ratio).reshape(-1, 1)
    target = torch.as_tensor(target_lip_ratio, dtype=source.dtype, device=source.device).reshape(-1, 1)
    source, target = torch.broadcast_tensors(source, target)
    return torch.cat([source, target], dim=1)
