"""`python -m veo_relay_client`, the same as `veo-relay`."""

import sys

from veo_relay_client.cli import main

sys.exit(main())
