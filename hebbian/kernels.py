"""Numba kernels: one call per network step, forward pass fused with the plasticity update.

Why the update is applied lazily
--------------------------------
A step computes y_t with the current weights W_t, then updates every layer with that
step's pre- and post-synaptic activations: W_{t+1} = norm(W_t + dW(x_t, y_t)). Done in that
order, the weights (and coefficients) are read once for the forward pass and again for the
update. Here the update of step t is deferred to the start of step t+1 and fused with its
forward pass: while row i of W is in cache we compute the pending dW, write the new weight
and immediately use it for x_{t+1} . W_{t+1}. Each weight and coefficient is streamed once
per step. Normalisation by max |w| is folded in the same way: the kernel keeps the weights
unnormalised, scales the layer's pre-activations by 1 / max |w| (the forward pass is linear
in W) and remembers that scale for the next update. `hebbian_flush` applies a pending
update on its own so that callers who look at the weights see exactly W_{t+1}.

Coefficients are read from `terms`, the rule's coefficients de-interleaved into one
contiguous run per term (A, B, C, D, eta), which the network refreshes from the flat
parameter vector at every reset (about 0.5 ms for 456,640 coefficients, once per episode).
Read in the parameter layout, (n_in, n_out, k) interleaved, every coefficient load would
have stride k; the de-interleaved runs let the inner loop run on SIMD lanes, about 1.35x
faster per step on the CarRacing stack (see BENCHMARKS.md).

One compiled kernel serves all rules (see `RULE_LAYOUTS`), so it is cached on disk
(`cache=True`): workers and later processes load it instead of compiling again.

Divergence guard
----------------
The fast loop is branch-free; after each layer the kernel checks that every pre-activation
is finite and every |w| <= limit. If not (rare: a diverging rule), a slow pass sets NaN
weights to 0, clips the rest to [-limit, limit], recomputes the layer and raises the
`diverged` flag, so actions stay finite and the fitness problem can see what happened.

Arrays shared by the kernels (float32 unless noted; L = number of layers, S = synapses):
    weights   (S,)                all layers' weights, layer l at w_off[l], row-major (n_in, n_out)
    terms     (5 * S,)            term t of synapse s at t * S + s (s numbered as in weights;
                                  t in the rule's order, see RULE_LAYOUTS; unused runs ignored)
    scales    (L,)                factor that turns stored weights into the layer's true weights
    acts      (2, sum sizes)      activations of this step (row parity) and the previous one
    sizes, w_off, a_off           int64 layout tables
"""
from __future__ import annotations

import numpy as np
from numba import njit

from hebbian.rules import RULE_NAMES, Rule

ACTIVATIONS = {"linear": 0, "tanh": 1, "relu": 2}


# Per rule of hebbian.rules.RULE_NAMES (by index): k and where A, B, C, D, eta sit within a
# synapse's k coefficients (-1: absent), which is also their run in `terms`. The kernels
# branch on the rule once per row and pass these as literals, so every branch compiles to
# a loop without the absent terms, while one cached kernel serves every rule.
RULE_LAYOUTS = (
    (1, 0, -1, -1, -1, -1),   # A
    (2, 0, -1, -1, 1, -1),    # AD
    (3, 0, -1, -1, 1, 2),     # AD_lr
    (3, 0, 1, 2, -1, -1),     # ABC
    (4, 0, 1, 2, -1, 3),      # ABC_lr
    (4, 0, 1, 2, 3, -1),      # ABCD
    (5, 0, 1, 2, 3, 4),       # ABCD_lr
)


def rule_code(rule: Rule) -> int:
    """The kernels' code for `rule` (its index in RULE_NAMES), checked against RULE_LAYOUTS."""
    code = RULE_NAMES.index(rule.name)
    assert RULE_LAYOUTS[code] == (rule.k, *(rule.index(t) for t in ("A", "B", "C", "D", "eta")))
    return code


@njit(inline="always")
def _dw(c, total, b, pre, post, oa, ob, oc, od, oe):
    # eta * ((A*pre + C)*post + (B*pre + D)) = eta * (A*pre*post + B*pre + C*post + D) for
    # synapse b; term t of it sits at c[t * total + b]. The offsets are literals, so absent
    # terms (offset -1) fold away at compile time.
    a = c[np.uint64(oa) * total + b] * pre
    if oc >= 0:
        a += c[np.uint64(oc) * total + b]
    d = a * post
    if ob >= 0:
        d += c[np.uint64(ob) * total + b] * pre
    if od >= 0:
        d += c[np.uint64(od) * total + b]
    if oe >= 0:
        d *= c[np.uint64(oe) * total + b]
    return d


@njit(inline="always")
def _row_step(w, c, row, crow, n_out, oa, ob, oc, od, oe, s, pi, post, xi, h, cm):
    # Row i of a layer: the pending update, the |w| column max and the forward sum.
    # Unsigned indices spare Numba's negative-index wraparound, and every coefficient read
    # comes from the one array c: both keep LLVM able to vectorise this loop.
    total = np.uint64(c.shape[0] // 5)
    row = np.uint64(row)
    crow = np.uint64(crow)
    for j in range(np.uint64(n_out)):
        v = w[row + j] * s + _dw(c, total, crow + j, pi, post[j], oa, ob, oc, od, oe)
        w[row + j] = v
        av = abs(v)
        cm[j] = av if av > cm[j] else cm[j]
        h[j] += xi * v


@njit(inline="always")
def _rule_row_step(code, w, c, row, crow, n_out, s, pi, post, xi, h, cm):
    # Dispatch on the rule with RULE_LAYOUTS' offsets as literals.
    if code == 6:
        _row_step(w, c, row, crow, n_out, 0, 1, 2, 3, 4, s, pi, post, xi, h, cm)
    elif code == 5:
        _row_step(w, c, row, crow, n_out, 0, 1, 2, 3, -1, s, pi, post, xi, h, cm)
    elif code == 4:
        _row_step(w, c, row, crow, n_out, 0, 1, 2, -1, 3, s, pi, post, xi, h, cm)
    elif code == 3:
        _row_step(w, c, row, crow, n_out, 0, 1, 2, -1, -1, s, pi, post, xi, h, cm)
    elif code == 2:
        _row_step(w, c, row, crow, n_out, 0, -1, -1, 1, 2, s, pi, post, xi, h, cm)
    elif code == 1:
        _row_step(w, c, row, crow, n_out, 0, -1, -1, 1, -1, s, pi, post, xi, h, cm)
    else:
        _row_step(w, c, row, crow, n_out, 0, -1, -1, -1, -1, s, pi, post, xi, h, cm)


@njit(nogil=True, cache=True)
def hebbian_step(x, weights, terms, code, scales, acts, parity, pending, sizes, w_off, a_off,
                 hidden_act, normalize, limit, colmax):
    """One network step; returns 1 if the divergence guard fired, else 0.

    x: (sizes[0],) input. Writes this step's activations into acts[parity]; the output
    layer's (linear) values are acts[parity, a_off[L]:]. code: the rule (`rule_code`).
    colmax: float32 scratch of 2 x max n_out.
    """
    cur = acts[parity]
    prev = acts[1 - parity]
    num_layers = sizes.shape[0] - 1
    diverged = 0
    cur[: sizes[0]] = x
    for layer in range(num_layers):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        xin = cur[a_off[layer]: a_off[layer] + n_in]
        h = cur[a_off[layer + 1]: a_off[layer + 1] + n_out]
        w = weights[w_off[layer]: w_off[layer] + n_in * n_out]
        s = scales[layer]
        h[:] = 0.0
        if pending:
            pre_prev = prev[a_off[layer]: a_off[layer] + n_in]
            post_prev = prev[a_off[layer + 1]: a_off[layer + 1] + n_out]
            cm = colmax[:n_out]
            cm[:] = 0.0
            for i in range(n_in):
                row = i * n_out
                _rule_row_step(code, w, terms, row, w_off[layer] + row, n_out, s, pre_prev[i], post_prev, xin[i], h,
                               cm)
            mx = cm.max()
            if not (np.isfinite(h).all() and mx <= limit):
                diverged = 1
                mx = _repair_layer(w, xin, h, n_in, n_out, limit)
            if normalize and mx > 0:
                inv = np.float32(1.0) / mx
                h *= inv
                scales[layer] = inv
            else:
                scales[layer] = 1.0
        else:
            for i in range(n_in):
                xi = xin[i]
                row = i * n_out
                for j in range(n_out):
                    h[j] += xi * w[row + j]
            h *= s
        if layer < num_layers - 1:
            _activate(h, hidden_act)
    return diverged


@njit(nogil=True, cache=True)
def hebbian_flush(weights, terms, code, scales, acts, parity, sizes, w_off, a_off, normalize, limit, colmax):
    """Apply the update pending from the step whose activations are acts[parity].

    Leaves the true weights in `weights` (scales folded in, all set to 1).
    colmax: float32 scratch of 2 x max n_out. Returns 1 if the divergence guard fired, else 0.
    """
    last = acts[parity]
    diverged = 0
    for layer in range(sizes.shape[0] - 1):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        w = weights[w_off[layer]: w_off[layer] + n_in * n_out]
        pre = last[a_off[layer]: a_off[layer] + n_in]
        post = last[a_off[layer + 1]: a_off[layer + 1] + n_out]
        s = scales[layer]
        h = colmax[:n_out]   # a flush has no forward pass: this sum is scratch, never read
        cm = colmax[n_out: 2 * n_out]
        for i in range(n_in):
            row = i * n_out
            _rule_row_step(code, w, terms, row, w_off[layer] + row, n_out, s, pre[i], post, pre[i], h, cm)
        for idx in range(w.shape[0]):
            v = w[idx]
            if not (abs(v) <= limit):
                diverged = 1
                w[idx] = 0.0 if v != v else (limit if v > 0 else -limit)
        mx = np.abs(w).max()
        if normalize and mx > 0:
            w *= np.float32(1.0) / mx
        scales[layer] = 1.0
    return diverged


@njit(nogil=True, cache=True)
def _repair_layer(w, xin, h, n_in, n_out, limit):
    """Slow path of the divergence guard: NaN -> 0, clip to +-limit, recompute h; returns max |w|."""
    mx = np.float32(0.0)
    h[:] = 0.0
    for i in range(n_in):
        row = i * n_out
        for j in range(n_out):
            v = w[row + j]
            if v != v:
                v = np.float32(0.0)
            elif v > limit:
                v = limit
            elif v < -limit:
                v = -limit
            w[row + j] = v
            mx = max(mx, abs(v))
            h[j] += xin[i] * v
    return mx


@njit(nogil=True, cache=True)
def _activate(h, code):
    if code == 1:
        for j in range(h.shape[0]):
            h[j] = np.tanh(h[j])
    elif code == 2:
        for j in range(h.shape[0]):
            h[j] = max(h[j], np.float32(0.0))
