"""JoyVASA's released audio-to-motion generator as a Playmate motion backend.

Split like the release's own stages:

* :mod:`.files` -- the release (``jdh-algo/JoyVASA`` on Hugging Face, MIT): read without
  unpickling code, converted once to safetensors, located / downloaded;
* :mod:`.network` -- HuBERT audio encoder + denoising transformer, every size from the file;
* :mod:`.sampler` -- upstream's windowed ancestral DDPM sampler with audio guidance;
* :mod:`.generator` -- :class:`JoyVASAGenerator` (the generator interface of
  :mod:`playmate.motion.generator`: audio -> MOTION) and :func:`load_joyvasa`.

The golden parity check that exercises every stage is ``python -m playmate.parity joyvasa``.
"""

from .files import (GENERATOR_NAME, GENERATOR_REMOTE, TEMPLATE_KEYS, TEMPLATE_NAME, TEMPLATE_REMOTE,
                    JoyVASAFiles, looks_like_joyvasa, read_converted, read_release, write_converted)
from .generator import DEFAULT_CFG_AUDIO, PE_MODES, JoyVASAGenerator, load_joyvasa
from .network import SAMPLE_RATE, build_network

__all__ = ["JoyVASAGenerator", "load_joyvasa", "looks_like_joyvasa", "read_release", "read_converted",
           "write_converted", "build_network", "JoyVASAFiles", "GENERATOR_NAME", "TEMPLATE_NAME", "TEMPLATE_KEYS",
           "GENERATOR_REMOTE", "TEMPLATE_REMOTE", "PE_MODES", "DEFAULT_CFG_AUDIO", "SAMPLE_RATE"]
