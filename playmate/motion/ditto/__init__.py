"""Ditto (antgroup/ditto-talkinghead): audio-to-motion diffusion in LivePortrait's motion space."""
