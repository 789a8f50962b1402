"""The AttentionAgent authors' way of loading a flat parameter vector into torch modules.

google/brain-tokyo-workshop, AttentionAgent/solutions/torch_solutions.py,
`BaseTorchSolution.set_params`: layers in order, each layer's state_dict keys sorted
alphabetically, each tensor taken raveled (C order) from the vector. Shared by the tests
of the patch attention and the LSTM controller and by benchmarks/attention_agent.py.
"""
from __future__ import annotations

import numpy as np
import torch


def load_authors_layout(layers, flat: np.ndarray) -> None:
    """Load `flat` (float32, exactly the layers' parameter count) into `layers` in place."""
    offset = 0
    for layer in layers:
        state = layer.state_dict()
        new = {}
        for key in sorted(state):
            n = state[key].numel()
            new[key] = torch.from_numpy(flat[offset: offset + n].reshape(state[key].shape).copy())
            offset += n
        layer.load_state_dict(new)
    assert offset == flat.size, (offset, flat.size)
