"""The LSTM controller of the self-attention agent (Tang et al. 2020), without torch per step.

`LSTMNetwork((n_in, hidden, n_out))` is exactly the authors' controller
(google/brain-tokyo-workshop, AttentionAgent/solutions/torch_solutions.py, `LSTMStack` with
one hidden layer, then `MLPSolution`'s output activation): one `torch.nn.LSTM` layer whose
state (h, c) is zero at each episode start, then `nn.Linear(hidden, n_out)`, then tanh.
CarRacing: (20, 16, 3), 2,483 parameters. It has the interface of
`hebbian.network.StaticNetwork` (`num_params`, `sizes`, `set_params`, `reset`, `step`,
`weights`, `diverged`), so a policy can use it in place of the feed-forward networks.

Shapes (H = hidden, n = n_in, m = n_out), float32 throughout:
    x (n,) -> gates = W_ih x + b_ih + W_hh h + b_hh  (4H,)
    i, f, g, o = gates[0:H], gates[H:2H], gates[2H:3H], gates[3H:4H]   (PyTorch's gate order)
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c')
    y = tanh(W_out h' + b_out)  (m,)

Parameter layout (the authors' `get_params`: layers in order, each layer's state_dict keys
sorted alphabetically, each tensor raveled in C order):
    bias_hh_l0 (4H) | bias_ih_l0 (4H) | weight_hh_l0 (4H, H) | weight_ih_l0 (4H, n)
    | bias (m) | weight (m, H)                                   -> 4H (n + H + 2) + m (H + 1)

One step is one call of a small Numba kernel (`cache=True`, compiled once per machine):
about 3 us, against about 18 us for the same step in NumPy and about 170 us for the torch
modules under no_grad, one thread (benchmarks/attention_agent.py).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from hebbian.network import _as_param_vector, _check_sizes

OUTPUT_ACTIVATIONS = {"linear": 0, "tanh": 1}  # the authors' "tanh" and their else-branch


@njit(inline="always")
def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))  # float64; exp overflows to inf for v < -709: then 0, as it should


@njit(inline="always")
def _tanh(v):
    # Through exp, in float64: glibc's tanh costs ~5x an exp. The cancellation in 1 - e is
    # ~1e-16 absolute, far below float32 resolution.
    e = math.exp(-2.0 * abs(v))
    return math.copysign((1.0 - e) / (1.0 + e), v)


@njit(nogil=True, cache=True, fastmath={"contract", "reassoc"}, error_model="numpy")
def _lstm_step(params, x, work, n_in, n_h, n_out, out_act):
    """One LSTM + linear step in place; returns 1 if a value was not finite (then set to 0), else 0.

    params: the flat vector in the layout of the module docstring; x (n_in,); work: float32
    (6 n_h + n_out,) = h (n_h) | c (n_h) | gates (4 n_h, scratch) | output (n_out), one
    buffer so that a call passes few arrays. Matrix-vector products in float32 (summation
    order free: "reassoc"), gate nonlinearities in float64.
    """
    g4 = 4 * n_h
    h = work[:n_h]
    c = work[n_h:2 * n_h]
    gates = work[2 * n_h:6 * n_h]
    out = work[6 * n_h:6 * n_h + n_out]
    o_w_hh = 2 * g4
    o_w_ih = o_w_hh + g4 * n_h
    o_b = o_w_ih + g4 * n_in
    o_w = o_b + n_out
    b_hh = params[:g4]
    b_ih = params[g4:o_w_hh]
    w_hh = params[o_w_hh:o_w_ih].reshape((g4, n_h))
    w_ih = params[o_w_ih:o_b].reshape((g4, n_in))
    b = params[o_b:o_w]
    w = params[o_w:o_w + n_out * n_h].reshape((n_out, n_h))
    for r in range(g4):
        acc = b_ih[r] + b_hh[r]
        row = w_ih[r]
        for k in range(n_in):
            acc += row[k] * x[k]
        row = w_hh[r]
        for k in range(n_h):
            acc += row[k] * h[k]
        gates[r] = acc
    bad = 0
    for j in range(n_h):
        cj = _sigmoid(gates[n_h + j]) * c[j] + _sigmoid(gates[j]) * _tanh(gates[2 * n_h + j])
        hj = _sigmoid(gates[3 * n_h + j]) * _tanh(cj)
        if not (math.isfinite(cj) and math.isfinite(hj)):
            bad = 1
            cj = 0.0
            hj = 0.0
        c[j] = cj
        h[j] = hj
    for j in range(n_out):
        acc = b[j]
        row = w[j]
        for k in range(n_h):
            acc += row[k] * h[k]
        y = _tanh(acc) if out_act == 1 else float(acc)
        if not math.isfinite(y):
            bad = 1
            y = 0.0
        out[j] = y
    return bad


class LSTMNetwork:
    """One LSTM layer, a linear layer and an output activation; parameters as the authors lay them out.

    Args:
        sizes: (n_in, hidden, n_out), e.g. (20, 16, 3) for the CarRacing attention agent.
        output_activation: "tanh" (the authors' CarRacing setting) or "linear".

    `diverged` becomes True if a state or output value is ever not finite (NaN or infinite
    parameters or inputs); such values are set to 0, so outputs stay finite.
    """

    def __init__(self, sizes, output_activation: str = "tanh"):
        sizes = _check_sizes(sizes)
        if len(sizes) != 3:
            raise ValueError(f"an LSTM network has sizes (n_in, hidden, n_out), got {sizes}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output activation {output_activation!r}; "
                             f"choose one of: {', '.join(OUTPUT_ACTIVATIONS)}")
        self.sizes = sizes
        self.output_activation = output_activation
        self._out_act = OUTPUT_ACTIVATIONS[output_activation]
        n_in, n_h, n_out = sizes
        g4 = 4 * n_h
        # name -> (offset, shape), in the authors' order.
        self.layout = {}
        offset = 0
        for name, shape in (("bias_hh_l0", (g4,)), ("bias_ih_l0", (g4,)), ("weight_hh_l0", (g4, n_h)),
                            ("weight_ih_l0", (g4, n_in)), ("bias", (n_out,)), ("weight", (n_out, n_h))):
            self.layout[name] = (offset, shape)
            offset += math.prod(shape)
        self.num_params = offset
        self._params = None
        self._work = np.zeros(6 * n_h + n_out, dtype=np.float32)  # h | c | gates | output
        self._state = self._work[: 2 * n_h].reshape(2, n_h)
        self._out = self._work[6 * n_h:]
        self._in_shape = (n_in,)
        self.diverged = False

    # -- parameters -----------------------------------------------------------------
    def initial_params(self, seed) -> np.ndarray:
        """PyTorch's default initialisation, drawn with NumPy from `seed`: the LSTM's
        parameters U(-1/sqrt(hidden), 1/sqrt(hidden)), the linear layer's
        U(-1/sqrt(hidden), 1/sqrt(hidden)) too (its in_features is the hidden width)."""
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.sizes[1])  # the LSTM's 1/sqrt(hidden) = the Linear's 1/sqrt(in_features)
        return rng.uniform(-bound, bound, self.num_params).astype(np.float32)

    def set_params(self, flat: np.ndarray) -> None:
        """Use `flat` (float32, (num_params,)) as the parameters; a view is kept, not a copy,
        and it is read at every step."""
        self._params = _as_param_vector(flat, self.num_params)

    def param(self, name: str) -> np.ndarray:
        """A view of one parameter tensor by its torch state_dict name, e.g. "weight_ih_l0"."""
        self._require_params()
        offset, shape = self.layout[name]
        return self._params[offset: offset + math.prod(shape)].reshape(shape)

    @property
    def weights(self) -> list[np.ndarray]:
        """The weight matrices as (n_in, n_out) views (transposes of torch's):
        weight_ih_l0.T (n_in, 4H), weight_hh_l0.T (H, 4H), weight.T (H, n_out)."""
        return [self.param(name).T for name in ("weight_ih_l0", "weight_hh_l0", "weight")]

    # -- episode --------------------------------------------------------------------
    def reset(self, seed=None) -> None:
        """Start an episode: the state (h, c) is zeroed; nothing is drawn (`seed` is unused)."""
        self._work[:] = 0.0
        self.diverged = False

    def step(self, x: np.ndarray) -> np.ndarray:
        """Forward one input (float32, (n_in,)); returns the activated output (n_out,), an
        internal buffer overwritten by the next step (copy it to keep it)."""
        if self._params is None:
            self._require_params()
        x = np.asarray(x, dtype=np.float32)
        if x.shape != self._in_shape:
            raise ValueError(f"expected an input of shape {self._in_shape}, got {x.shape}")
        n_in, n_h, n_out = self.sizes
        if _lstm_step(self._params, x, self._work, n_in, n_h, n_out, self._out_act):
            self.diverged = True
        return self._out

    @property
    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """(h, c), float32 (hidden,) views of the current state."""
        return self._state[0], self._state[1]

    def _require_params(self):
        if self._params is None:
            raise RuntimeError("call set_params(flat) before using the network")
