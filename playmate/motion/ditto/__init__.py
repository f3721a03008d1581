"""Ditto (antgroup/ditto-talkinghead): the LMDM audio-to-motion generator and its golden parity."""
