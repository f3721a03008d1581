"""ComfyUI entry point of the Playmate node pack.

Only registers node classes: importing this module loads no model, touches no
file and installs nothing.  The node modules import ComfyUI lazily, so the
library (``playmate/``) works without ComfyUI.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
