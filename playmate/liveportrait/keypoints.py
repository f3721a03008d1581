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


def transform_keypoint(kp, exp, rot, t, scale):
    """x = s*(x_c @ R + exp); x[..., :2] += t[..., :2] (t_z is unused).

    kp, exp: [B,21,3]; rot: [B,3,3]; t: [B,3]; scale: [B] or [B,1].
    """
    scale = scale.reshape(-1, 1, 1)
    x = scale * (kp @ rot + exp)
    return torch.cat([x[..., :2] + t[:, None, :2], x[..., 2:]], dim=-1)
