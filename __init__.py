"""ComfyUI entry point of the Playmate node pack.

Only registers node classes: importing this module loads no model, touches no
file and installs nothing.  The node modules import ComfyUI lazily, so the
library (``playmate/``) works without ComfyUI.
"""

import importlib.util
import os
import sys

# The nodes import the library as the top-level package ``playmate`` (as the CLI and tests do).
# ComfyUI imports this folder under its own name, so load the bundled library once under the name
# ``playmate`` before anything imports it.  (A relative ``from . import playmate`` aliased into
# sys.modules is not enough: its submodules would live under "<pack>.playmate.*" while
# ``from playmate.face import ...`` loads a second copy as "playmate.*", and classes of the two
# copies fail isinstance checks, e.g. paste_back's ``isinstance(crop, Crop)``.)
if "playmate" not in sys.modules:
    _lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playmate")
    _spec = importlib.util.spec_from_file_location("playmate", os.path.join(_lib, "__init__.py"),
                                                   submodule_search_locations=[_lib])
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["playmate"] = _module
    try:
        _spec.loader.exec_module(_module)
    except BaseException:
        del sys.modules["playmate"]
        raise

if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402
else:
    # Imported as a plain module: pytest does so in a checkout whose folder name is not a Python name
    # (``ComfyUI-Playmate``); the repository root is then on sys.path.
    from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
