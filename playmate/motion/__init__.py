"""Motion: the MOTION value, generators (Playmate DiT, JoyVASA), diffusion and sampling."""

from .types import Motion

__all__ = ["Motion"]
