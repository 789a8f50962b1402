"""The plain NumPy reference of the plasticity rule: obviously correct, one place.

    forward:  h_l = o_{l-1} @ W_l, o_l = act(h_l) (the output layer with its own activation)
    update:   W_l += eta * (A * o_i * o_j + B * o_i + C * o_j + D)   per synapse, the terms
              a rule does not evolve being 0 and eta being 1 without "_lr"
    then, with normalize, W_l /= max |W_l|

It reads the coefficients in the project's layout (`hebbian.rules`), and it is what the
Numba kernel is held to in tests/test_network.py and timed against in benchmarks/kernels.py.
"""
from __future__ import annotations

import numpy as np

from hebbian.rules import get_rule

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "linear": lambda v: v}


class ReferenceHebbian:
    """A Hebbian network step by step, in `dtype` (float64 for checking, float32 for timing).

    sizes: layer widths; coeffs_flat: the flat coefficients (the kernel's layout);
    w0: the initial weights per layer, (n_in, n_out) each.
    """

    def __init__(self, sizes, rule_name, coeffs_flat, w0, normalize, activation="tanh",
                 output_activation="linear", dtype=np.float64):
        rule = get_rule(rule_name)
        self.normalize = normalize
        self.act, self.out_act = ACTIVATIONS[activation], ACTIVATIONS[output_activation]
        self.ws = [np.array(w, dtype=dtype) for w in w0]
        self.terms, off = [], 0
        for a, b in zip(sizes[:-1], sizes[1:]):
            c = coeffs_flat[off: off + a * b * rule.k].reshape(a, b, rule.k).astype(dtype)
            off += a * b * rule.k
            # Each term a view of its column, or 0 when the rule does not evolve it (eta: 1).
            self.terms.append({name: c[..., rule.terms.index(name)] if name in rule.terms else (1.0 if name == "eta" else 0.0)
                               for name in ("A", "B", "C", "D", "eta")})

    def step(self, x):
        """One step: the outputs with the current weights, then every layer's update."""
        acts = [np.asarray(x, dtype=self.ws[0].dtype)]
        for layer, w in enumerate(self.ws):
            h = acts[-1] @ w
            acts.append(self.act(h) if layer < len(self.ws) - 1 else self.out_act(h))
        for layer, (w, t) in enumerate(zip(self.ws, self.terms)):
            pre, post = acts[layer][:, None], acts[layer + 1][None, :]
            w += t["eta"] * (t["A"] * pre * post + t["B"] * pre + t["C"] * post + t["D"])
            if self.normalize:
                w /= np.abs(w).max()
        return acts[-1]


def reference_rollout(sizes, rule_name, coeffs_flat, w0, inputs, normalize, activation="tanh",
                      output_activation="linear"):
    """Float64 rollout over `inputs`: the outputs of every step and the weights after the last update."""
    net = ReferenceHebbian(sizes, rule_name, coeffs_flat, w0, normalize, activation, output_activation)
    outputs = [net.step(x) for x in inputs]
    return outputs, net.ws
