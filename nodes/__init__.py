"""Thin ComfyUI adapters over the playmate library, one module per concern.

Each module defines its own NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS;
they are merged here.  Importing loads no model and imports no ComfyUI module.
"""

import importlib

MODULES = ("loaders", "source", "audio_nodes", "motion_nodes", "render", "all_in_one", "controls", "emotion_nodes",
           "video_edit")

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
for _name in MODULES:
    _module = importlib.import_module("." + _name, __name__)
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)
