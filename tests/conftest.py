import pytest
import torch


@pytest.fixture(autouse=True)
def _no_grad_and_one_thread():
    """minidl must work with autograd globally off; tiny models run fastest on one thread."""
    torch.set_num_threads(1)
    previous = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    yield
    torch.set_grad_enabled(previous)
