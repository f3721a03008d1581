"""ComfyUI entry point of the Playmate node pack.

Only registers node classes: importing this module loads no model, touches no
file and installs nothing.  The node modules import ComfyUI lazily, so the
library (``playmate/``) works without ComfyUI.
"""

import sys

if __package__:
    from . import playmate as _playmate

    # The nodes import the library as the top-level package ``playmate`` (as the CLI and tests do);
    # ComfyUI imports this folder under its own name, so make the bundled library reachable by that name.
    sys.modules.setdefault("playmate", _playmate)

    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:
    # Imported as a plain module: pytest does so in a checkout whose folder name is not a Python name
    # (``ComfyUI-Playmate``); the repository root is then on sys.path.
    from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
