"""Playmate: controllable portrait animation in LivePortrait's keypoint space (pure PyTorch)."""

__version__ = "0.1.0"
