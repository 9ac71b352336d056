"""Checkpoints: tensors in safetensors, everything else in JSON; never pickle.

A checkpoint is a directory with ``model.safetensors`` and ``model.json``, written to a
temporary directory first and renamed, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .._io import atomic_dir

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete or corrupt."""


def save_checkpoint(path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write ``tensors`` and ``meta`` (JSON-serialisable) to directory ``path`` atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    with atomic_dir(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                  tmp / "model.safetensors")
        (tmp / "model.json").write_text(json.dumps({"format": FORMAT_VERSION, **meta}, indent=1))
    return path


def load_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint directory; one-line ``CheckpointError`` if it is not a valid one."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    files = (path / "model.safetensors", path / "model.json")
    if not all(f.is_file() for f in files):
        raise CheckpointError(
            f"{path} is not a causalpert checkpoint (needs model.safetensors and model.json): "
            "pass the directory written by model.save()"
        )
    try:
        meta = json.loads(files[1].read_text())
        tensors = load_file(files[0])
    except (json.JSONDecodeError, SafetensorError, OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt ({exc}): re-save the model") from None
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')!r}, this "
                              f"causalpert reads format {FORMAT_VERSION}")
    return tensors, meta
