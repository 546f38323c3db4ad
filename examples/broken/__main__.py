"""``python -m examples.broken NAME``: run one broken client as a subprocess client."""

from __future__ import annotations

import json
import os
import sys

from examples.broken import by_name
from examples.clients.base import run

if __name__ == "__main__":
    broken = by_name(sys.argv[1])
    print(json.dumps(run(broken.client, json.load(sys.stdin), os.environ)))
