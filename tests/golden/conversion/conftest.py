import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These tests run many tiny ops; on a shared 2-core machine a second intra-op thread
    mostly spins and makes the timing erratic.  Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
