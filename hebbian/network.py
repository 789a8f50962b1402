"""Plastic and static feed-forward networks with the same interface.

`HebbianNetwork` evolves plasticity coefficients: weights are drawn fresh at every
`reset(seed)` and change at every `step` by the rule (see `hebbian.rules`, `hebbian.kernels`).
`StaticNetwork` is the baseline whose parameters are the weights themselves.

Both: no biases, hidden layers use `activation`, float32 throughout, `set_params(flat)`
keeps a view of the caller's vector. The output layer uses `output_activation`:
- "linear" (default): the action head bounds the raw outputs and the plasticity rule sees
  the raw values, as the paper's code does for CarRacing;
- "tanh" for the Bullet tasks: there the paper's code (`fitness_functions.py`) squashes the
  output layer, o3 = tanh(W3 x2), acts with that o3 and uses the squashed o3 as the
  post-synaptic activity of the last layer's Hebbian update. `step` returns the squashed
  values and `HebbianNetwork` stores them for the update, so a rule evolved here sees the
  activities it would see in the paper's setup.
"""
from __future__ import annotations

import numpy as np

from es.resources import physical_memory

from hebbian.kernels import ACTIVATIONS, NUM_TERMS, fold_terms, hebbian_flush, hebbian_step, rule_code, static_step
from hebbian.rules import get_rule

INITS = ("uniform", "normal", "xavier", "coevolve")


def check_memory(floats: int, what: str) -> None:
    """ValueError (one line) when `floats` float32 values would take over half this machine's memory.

    numpy's zeros are lazily committed pages, so a huge network would be "allocated" and
    then killed by the OS as soon as evolution touches it; checking first gives a reason.
    """
    total = physical_memory()
    need = 4 * int(floats)
    if total is not None and need > total // 2:
        raise ValueError(f"{what} needs about {need / 2**30:.1f} GiB of memory per worker and this machine has "
                         f"{total / 2**30:.0f} GiB; use smaller --hidden widths")


def _check_sizes(sizes) -> tuple[int, ...]:
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"network sizes must be at least two positive widths (input, ..., output), got {sizes}")
    return sizes


def _check_activation(activation: str) -> int:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[activation]


def _as_param_vector(flat: np.ndarray, num_params: int) -> np.ndarray:
    flat = np.asarray(flat)
    if flat.dtype != np.float32 or flat.ndim != 1 or not flat.flags.c_contiguous:
        # Only a wrong dtype or layout costs a copy; the common case keeps the caller's buffer.
        flat = np.ascontiguousarray(flat, dtype=np.float32).reshape(-1)
    if flat.shape[0] != num_params:
        raise ValueError(f"parameter vector has {flat.shape[0]} values, the network needs {num_params}")
    return flat


class HebbianNetwork:
    """A feed-forward network whose weights change every step by an evolved Hebbian rule.

    Args:
        sizes: layer widths, input first, e.g. (648, 128, 64, 3).
        rule: a name from `hebbian.rules.RULE_NAMES`.
        activation: hidden-layer activation, "tanh", "relu" or "linear".
        output_activation: the output layer's activation, same names; "linear" (default) or
            "tanh" (the paper's Bullet tasks). The activated output is both what `step`
            returns and the post-synaptic activity of the last layer's plasticity update.
        init: initial weights at each reset: "uniform" in [-init_scale, init_scale],
            "normal" with std init_scale, "xavier" (uniform, Glorot bound per layer), or
            "coevolve" (the initial weights are evolved too and appended to the parameters).
        init_scale: see `init`.
        normalize: divide each layer by its max |w| after every update (the paper, non-Bullet tasks).
        weight_limit: divergence guard; weights are kept within [-weight_limit, weight_limit].

    Parameters (flat float32 vector): each layer's coefficients (n_in, n_out, k) in layer
    order; with init="coevolve" each layer's initial weights (n_in, n_out) follow, in layer order.
    """

    def __init__(self, sizes, rule: str = "ABCD_lr", activation: str = "tanh", init: str = "uniform",
                 init_scale: float = 0.1, normalize: bool = False, weight_limit: float = 1e3,
                 output_activation: str = "linear"):
        self.sizes = _check_sizes(sizes)
        self.rule = get_rule(rule)
        self._act_code = _check_activation(activation)
        self._out_act_code = _check_activation(output_activation)
        self.output_activation = output_activation
        if init not in INITS:
            raise ValueError(f"unknown weight init {init!r}; choose one of: {', '.join(INITS)}")
        if not init_scale > 0 or not weight_limit > 0:
            raise ValueError("init_scale and weight_limit must be positive")
        self.activation, self.init, self.init_scale = activation, init, float(init_scale)
        self.normalize = bool(normalize)
        self.weight_limit = np.float32(weight_limit)

        shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        self._sizes = np.array(self.sizes, dtype=np.int64)
        self._w_off = np.concatenate([[0], np.cumsum([a * b for a, b in shapes])]).astype(np.int64)
        self._c_off = self._w_off * self.rule.k
        self._a_off = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.num_coeffs = int(self._c_off[-1])
        self.num_synapses = int(self._w_off[-1])
        self.num_params = self.num_coeffs + (self.num_synapses if init == "coevolve" else 0)
        # Per worker: weights and the four folded terms per synapse, and a few parameter
        # vectors (the centre, a member, the strategy's buffers).
        check_memory(5 * self.num_synapses + 3 * self.num_params, f"a Hebbian network of sizes {self.sizes}")

        self._weights = np.zeros(self.num_synapses, dtype=np.float32)
        self._terms = np.zeros((NUM_TERMS, self.num_synapses), dtype=np.float32)
        self._terms_flat = self._terms.reshape(-1)
        self._scales = np.ones(len(shapes), dtype=np.float32)
        self._acts = np.zeros((2, int(self._a_off[-1])), dtype=np.float32)
        self._code = rule_code(self.rule)
        self._colmax = np.zeros(2 * max(self.sizes[1:]), dtype=np.float32)
        out = slice(int(self._a_off[-2]), int(self._a_off[-1]))
        self._outputs = (self._acts[0, out], self._acts[1, out])  # views, made once
        self._weight_views = [self._weights[self._w_off[i]: self._w_off[i + 1]].reshape(shape)
                              for i, shape in enumerate(shapes)]
        self._params = None
        self._parity, self._pending = 0, False
        self.diverged = False

    # -- parameters -----------------------------------------------------------------
    def set_params(self, flat: np.ndarray) -> None:
        """Use `flat` (float32, (num_params,)) as the parameters; a view is kept, not a copy.

        The coefficients are read at every `reset`: changes to `flat` take effect at the
        start of the next episode.
        """
        self._params = _as_param_vector(flat, self.num_params)

    @property
    def coefficients(self) -> list[np.ndarray]:
        """Per layer, a view of the coefficients with shape (n_in, n_out, k)."""
        self._require_params()
        return [self._params[self._c_off[i]: self._c_off[i + 1]].reshape(a, b, self.rule.k)
                for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:]))]

    # -- episode --------------------------------------------------------------------
    def reset(self, seed) -> None:
        """Start an episode: fresh initial weights drawn from `seed` (an int or numpy
        SeedSequence), the coefficients read from the parameter vector, state cleared."""
        self._require_params()
        if self.init == "coevolve":
            self._weights[:] = self._params[self.num_coeffs:]
        else:
            rng = np.random.default_rng(seed)
            for view, (n_in, n_out) in zip(self._weight_views, zip(self.sizes[:-1], self.sizes[1:])):
                if self.init == "normal":
                    view[:] = rng.standard_normal((n_in, n_out), dtype=np.float32) * np.float32(self.init_scale)
                else:
                    bound = self.init_scale if self.init == "uniform" else np.sqrt(6.0 / (n_in + n_out))
                    view[:] = (rng.random((n_in, n_out), dtype=np.float32) * 2 - 1) * np.float32(bound)
        # De-interleave the coefficients, (n_in, n_out, k) per layer, into one contiguous run
        # per term with eta folded in: the kernel reads 4 unit-stride runs (SIMD-friendly).
        fold_terms(self._params[: self.num_coeffs].reshape(-1, self.rule.k), self.rule, self._terms)
        self._scales[:] = 1.0
        self._acts[:] = 0.0
        self._parity, self._pending = 0, False
        self.diverged = False

    def step(self, x: np.ndarray) -> np.ndarray:
        """Forward one input (float32, (sizes[0],)) and apply the plasticity update.

        Returns the output layer's values after `output_activation`, float32 (sizes[-1],).
        The returned array is an internal buffer: it is overwritten two steps later, copy it to keep it.
        """
        if self._params is None:
            self._require_params()
        self._parity ^= 1
        flag = hebbian_step(x, self._weights, self._terms_flat, self._code, self._scales,
                            self._acts, self._parity, self._pending, self._sizes, self._w_off,
                            self._a_off, self._act_code, self._out_act_code, self.normalize,
                            self.weight_limit, self._colmax)
        self._pending = True
        self.diverged |= bool(flag)
        return self._outputs[self._parity]

    @property
    def weights(self) -> list[np.ndarray]:
        """Current weights per layer, float32 (n_in, n_out) copies: W_{t+1}, the update of
        the last step applied (and the layer normalised).

        Reading them leaves the network exactly as it was: the kernel keeps the last update
        pending and fuses it with the next step's forward pass (see hebbian.kernels), and
        applying it here instead would round the next forward sums differently, enough to
        change a closed-loop episode. So the update is applied to a copy.
        """
        flat = self._weights.copy()
        # No update is pending only between reset and the first step, when every scale is 1
        # and the stored weights are the true ones.
        if self._pending:
            # The copy's divergence guard mirrors the next step's; that step raises the flag.
            hebbian_flush(flat, self._terms_flat, self._code, self._scales.copy(), self._acts, self._parity,
                          self._sizes, self._w_off, self._a_off, self.normalize, self.weight_limit, self._colmax)
        return [flat[self._w_off[i]: self._w_off[i + 1]].reshape(view.shape)
                for i, view in enumerate(self._weight_views)]

    def _require_params(self):
        if self._params is None:
            raise RuntimeError("call set_params(flat) before using the network")


class StaticNetwork:
    """The static-weight baseline: parameters are the weights, nothing changes within an episode.

    Args:
        sizes: layer widths, input first.
        activation: hidden-layer activation.
        output_activation: the output layer's, "linear" (default) or "tanh" (Bullet tasks), as
            in `HebbianNetwork`.

    Parameters (flat float32 vector): each layer's weights (n_in, n_out), C order, in layer order.
    """

    def __init__(self, sizes, activation: str = "tanh", output_activation: str = "linear"):
        self.sizes = _check_sizes(sizes)
        self.activation, self.output_activation = activation, output_activation
        self._act_code = _check_activation(activation)
        self._out_act_code = _check_activation(output_activation)
        shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        self._offsets = np.concatenate([[0], np.cumsum([a * b for a, b in shapes])]).astype(np.int64)
        self.num_params = int(self._offsets[-1])
        check_memory(3 * self.num_params, f"a static network of sizes {self.sizes}")
        self._shapes = shapes
        self._params = None
        self._sizes = np.array(self.sizes, dtype=np.int64)
        self._a_off = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self._acts = np.zeros(int(self._a_off[-1]), dtype=np.float32)
        self.diverged = False

    def set_params(self, flat: np.ndarray) -> None:
        """Use `flat` (float32, (num_params,)) as the weights; a view is kept, not a copy."""
        self._params = _as_param_vector(flat, self.num_params)
        self._weight_views = [self._params[self._offsets[i]: self._offsets[i + 1]].reshape(shape)
                              for i, shape in enumerate(self._shapes)]

    def reset(self, seed=None) -> None:
        """Nothing to draw (the weights are the parameters); the divergence flag is cleared."""
        self.diverged = False

    def step(self, x: np.ndarray) -> np.ndarray:
        """Forward one input (float32, (sizes[0],)); returns the output after `output_activation`
        (sizes[-1],), an internal buffer. Non-finite outputs (overflowing weights, a NaN input)
        become 0 and raise `diverged`, as the Hebbian kernel's guard does for plastic weights."""
        if static_step(np.asarray(x, dtype=np.float32), self._params, self._sizes, self._offsets, self._a_off,
                       self._acts, self._act_code, self._out_act_code):
            self.diverged = True
        return self._acts[self._a_off[-2]:]

    @property
    def weights(self) -> list[np.ndarray]:
        """The weights per layer, float32 (n_in, n_out) views of the parameters."""
        return self._weight_views
