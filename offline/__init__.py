"""Offline stand-ins for the things veo-relay talks to in the cloud."""

import sys
from pathlib import Path

# The shared layer, importable as Lambda's /opt/python makes it: the stack and the simulators are
# built from its provider registry (veo_relay.providers.registry). In the simulator function's
# package there is no such directory: the layer is /opt/python there.
_LAYER = Path(__file__).resolve().parent.parent / "layers" / "shared"
if _LAYER.is_dir() and str(_LAYER) not in sys.path:
    sys.path.insert(0, str(_LAYER))
