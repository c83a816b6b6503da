"""The golden kernels run long chains of small tensor operations: on a shared CPU intra-op
threading only adds synchronisation cost, so the golden tests run single-threaded."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
