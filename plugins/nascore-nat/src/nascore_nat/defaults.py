"""The one set of NAT defaults shared by the Python API class
(:class:`~nascore_nat.transformer.NeuralArchitectureTransformer`), the ``nat`` compressor
and ``nascore nat optimize``; ``tests/test_issue17.py`` checks that all three agree.

Where each value comes from ("paper": Guo et al., NeurIPS 2019, Section 4.1; "NAT code":
the authors' release; "here": chosen for this project's CPU scale -- none of these was
tuned on the benchmark's reported seeds):

=================  ==============  ==========================================================
name               value           source
=================  ==============  ==========================================================
policy             gcn             paper (Eq. 3)
epochs             10              here (paper: 100); CPU budget
C, layers          8, 5            here (paper's supernet: 8 cells); CPU budget
batch_size         64              NAT code
w_lr               0.05            here (cosine annealed; DARTS-style supernet SGD)
theta_lr           3e-4            paper / NAT code (Adam, betas 0.5/0.999)
entropy_weight     0.003           paper (lambda of Eq. 4)
entropy_floor      0.5             here: the guard keeps the policy's entropy at >= half of
                                   the uniform policy's until it has learned (issue 17)
m, n               1, 1            paper (Section 4.1)
inputs             neighbourhood   here: transitions of the input cell, never to null
                                   (NAT code keeps nulls out of its input cells)
input_fraction     0.25            here: share of supernet draws that are the input itself
warmup_epochs      2               here: a stand-in for the well-trained w_beta (Sec. 3.2)
samples            10              NAT code (sampling inference draws)
inference          calibrated      here: best on validation after real training, input
                                   included (issue 17 item 3); "sampling" is the paper's
calibrate_top      3               here: candidates (best by shared weights) trained for real
calibrate_epochs   5               here: epochs of that training (of the input alone, for
                                   calibrate_init = inherit); 5 chosen over 2 and over
                                   inherit 4+1 on development seeds 100-102 (VGG, DARTS_V2,
                                   ENAS on digits; validation; nat_paired_dev.json)
calibrate_init     scratch         here: candidates trained from seeded weights; "inherit":
                                   fine-tuned from the input's trained weights (a candidate
                                   is a subgraph of the input plus identities; issue 17)
finetune_epochs    1               here: epochs of that fine-tuning (inherit only)
max_cost_ratio     1.0             here: never more params or MAdds than the input
=================  ==============  ==========================================================
"""

from __future__ import annotations

DEFAULTS: dict = {
    "policy": "gcn",
    "epochs": 10,
    "C": 8,
    "layers": 5,
    "batch_size": 64,
    "theta_lr": 3e-4,
    "entropy_weight": 0.003,
    "entropy_floor": 0.5,
    "m": 1,
    "n": 1,
    "inputs": "neighbourhood",
    "input_fraction": 0.25,
    "warmup_epochs": 2,
    "samples": 10,
    "inference": "calibrated",
    "calibrate_top": 3,
    "calibrate_epochs": 5,
    "calibrate_init": "scratch",
    "finetune_epochs": 1,
    "max_cost_ratio": 1.0,
    "device": "cpu",
}

#: the names the transformer class, the compressor and the CLI all expose
SHARED = ("policy", "epochs", "batch_size", "theta_lr", "entropy_weight", "entropy_floor", "m", "n", "inputs",
          "input_fraction", "warmup_epochs", "max_cost_ratio", "device")
