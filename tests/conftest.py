"""Test-session settings: tiny tensors run fastest on one thread (and CI machines are shared)."""

import os

import torch

os.environ.setdefault("CAUSALPERT_PROGRESS", "0")
torch.set_num_threads(1)
