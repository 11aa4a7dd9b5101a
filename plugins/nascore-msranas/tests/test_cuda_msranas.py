"""MS-RANAS torch code on CUDA (marker ``cuda``; skipped without a CUDA device,
``NASCORE_CUDA_TESTS_ON_CPU=1`` runs it on the CPU to check the test itself)."""


import numpy as np
import pytest
import torch

from nascore.data import load_task
from nascore.nn.ops import DARTS_OPS
from nascore.spaces.darts import DartsSpace
from nascore_msranas.network import MultiScaleNetwork, MultiScaleSupernet, make_layout
from nascore_msranas.search import Searcher, SearchSettings
from nascore.testing import cuda_test_device

pytestmark = pytest.mark.cuda

GENOTYPE = {
    "normal": [("sep_conv_3x3", 0, 2), ("skip_connect", 1, 2), ("dil_conv_3x3", 1, 3), ("max_pool_3x3", 2, 3)],
    "normal_concat": [2, 3],
    "reduce": [("avg_pool_3x3", 0, 2), ("sep_conv_5x5", 1, 2), ("skip_connect", 0, 3), ("dil_conv_5x5", 2, 3)],
    "reduce_concat": [2, 3],
}


@pytest.fixture
def device():
    return cuda_test_device()


def test_multi_scale_network_forward_backward_step(device):
    torch.manual_seed(0)
    net = MultiScaleNetwork(GENOTYPE, (3, 16, 16), 10, make_layout((3, 16, 16), scales=3, layers=5, C=4)).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x, y = torch.randn(8, 3, 16, 16, device=device), torch.randint(10, (8,), device=device)
    outs = net(x)
    assert all(o.device.type == device.type and o.shape == (8, 10) for o in outs)
    loss = sum(torch.nn.functional.cross_entropy(o, y) for o in outs)
    before = [p.detach().clone() for p in net.parameters()]
    loss.backward()
    opt.step()
    assert any(not torch.equal(p, b) for p, b in zip(net.parameters(), before))


def test_one_search_epoch_runs_on_the_device(device):
    task = load_task({"dataset": "digits", "seed": 0, "subset": 128})
    torch.manual_seed(0)
    net = MultiScaleSupernet(DARTS_OPS, (1, 8, 8), 10, make_layout((1, 8, 8), scales=2, layers=3, C=2), nodes=2)
    settings = SearchSettings(epochs=1, batch_size=32, order="second", cutout=2, exit_weights=[1.0, 0.5])
    searcher = Searcher(net, DartsSpace(nodes=2), task, settings, seed=0, device=str(device))
    before = [a.detach().clone() for a in net.arch_parameters()]
    record = searcher.run()
    assert all(p.device.type == device.type for p in net.parameters())
    assert any(not torch.equal(a.detach(), b) for a, b in zip(net.arch_parameters(), before))
    assert np.isfinite(record.epochs[0]["train_loss"])
