"""The core tests import their program builders from ``core_cases.py`` in this directory;
PyTorch (the golden device) runs on one thread."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)
