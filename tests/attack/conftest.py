"""The attack suite imports its generator as a sibling module."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
