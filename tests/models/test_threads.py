"""torch_threads: causalpert's thread count inside fit/predict, the caller's restored after."""

import pytest
import torch

from causalpert.models.threads import default_threads, torch_threads


def test_threads_are_set_and_restored(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("CAUSALPERT_THREADS", "2")
    assert default_threads() == 2
    with torch_threads():
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    monkeypatch.setenv("CAUSALPERT_THREADS", "zero")
    with pytest.raises(ValueError, match="CAUSALPERT_THREADS must be a positive integer"):
        default_threads()
