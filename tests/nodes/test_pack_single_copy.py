"""The pack loaded the way ComfyUI loads it holds ONE copy of the library.

Found live (two-faces workflow, PlaymatePasteBack): the old ``from . import playmate`` aliased into
sys.modules left the library's modules under "<pack>.playmate.*" while the nodes'
``from playmate.face import ...`` loaded a second copy as "playmate.*"; a Crop made by one copy
failed paste_back's ``isinstance(crop, Crop)`` of the other ("TypeError: 'Crop' object is not
iterable"), and model caches were duplicated.  pytest itself imports ``playmate`` top-level, so
this runs in a clean interpreter.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pack_import_loads_one_copy_of_the_library(tmp_path):
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('ComfyUI-Playmate', %r, submodule_search_locations=[%r])\n"
        "m = importlib.util.module_from_spec(spec); sys.modules[spec.name] = m; spec.loader.exec_module(m)\n"
        "dup = [k for k in sys.modules if k.startswith(spec.name + '.playmate')]\n"
        "assert not dup, dup\n"
        "source = sys.modules[spec.name + '.nodes.source']\n"
        "import playmate.face.crop, playmate.face.paste\n"
        "assert source.pipeline is sys.modules['playmate.pipeline'], source.pipeline\n"
        "assert playmate.face.paste.Crop is playmate.face.crop.Crop\n"
        "assert sys.modules['playmate'].__file__.startswith(%r)\n"
    ) % (str(ROOT / "__init__.py"), str(ROOT), str(ROOT / "playmate"))
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                   env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(tmp_path)})
