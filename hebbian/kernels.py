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
in W) and remembers that scale for the next update. `flush` applies a pending update on its
own so that callers who look at the weights see exactly W_{t+1}.

Divergence guard
----------------
The fast loop is branch-free; after each layer the kernel checks that every pre-activation
is finite and every |w| <= limit. If not (rare: a diverging rule), a slow pass sets NaN
weights to 0, clips the rest to [-limit, limit], recomputes the layer and raises the
`diverged` flag, so actions stay finite and the fitness problem can see what happened.

Arrays shared by the kernels (float32 unless noted; L = number of layers):
    weights   (sum n_in*n_out,)   all layers' weights, layer l at w_off[l], row-major (n_in, n_out)
    coeffs    (sum n_in*n_out*k,) the rule coefficients (see hebbian.rules), layer l at c_off[l]
    scales    (L,)                factor that turns stored weights into the layer's true weights
    acts      (2, sum sizes)      activations of this step (row parity) and the previous one
    sizes, w_off, c_off, a_off    int64 layout tables
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit

from hebbian.rules import Rule

ACTIVATIONS = {"linear": 0, "tanh": 1, "relu": 2}


@functools.lru_cache(maxsize=None)
def make_kernels(rule: Rule):
    """Compile (step, flush) kernels specialised for `rule`.

    The term positions are closure constants, so the compiled loop contains exactly the
    terms the rule has; missing terms cost nothing.
    """
    k = rule.k
    ia, ib, ic, id_, ie = (rule.index(t) for t in ("A", "B", "C", "D", "eta"))

    @njit(inline="always")
    def delta(t, j, pre, post):
        # eta * ((A*pre + C)*post + (B*pre + D)) from the row's de-interleaved coefficients
        # t (k, n_out); each absent term folds away at compile time.
        a = t[ia, j] * pre
        if ic >= 0:
            a += t[ic, j]
        d = a * post
        if ib >= 0:
            d += t[ib, j] * pre
        if id_ >= 0:
            d += t[id_, j]
        if ie >= 0:
            d *= t[ie, j]
        return d

    @njit(inline="always")
    def deinterleave(c, row, n_out, t):
        # Row i's coefficients sit as (n_out, k) pairs; copying them to k contiguous rows
        # (L1-resident) lets the main loop over j run on unit-stride SIMD lanes.
        for j in range(n_out):
            for q in range(k):
                t[q, j] = c[(row + j) * k + q]

    @njit(nogil=True, cache=False)
    def step(x, weights, coeffs, scales, acts, parity, pending, sizes, w_off, c_off, a_off,
             hidden_act, normalize, limit, scratch):
        """One network step; returns 1 if the divergence guard fired, else 0.

        x: (sizes[0],) input. Writes this step's activations into acts[parity]; the output
        layer's (linear) values are acts[parity, a_off[L]:]. scratch: (k + 1, max n_out).
        """
        cur = acts[parity]
        prev = acts[1 - parity]
        num_layers = sizes.shape[0] - 1
        diverged = 0
        cur[: sizes[0]] = x
        t = scratch[:k]
        for layer in range(num_layers):
            n_in = sizes[layer]
            n_out = sizes[layer + 1]
            xin = cur[a_off[layer]: a_off[layer] + n_in]
            h = cur[a_off[layer + 1]: a_off[layer + 1] + n_out]
            w = weights[w_off[layer]: w_off[layer] + n_in * n_out]
            s = scales[layer]
            h[:] = 0.0
            if pending:
                c = coeffs[c_off[layer]: c_off[layer] + n_in * n_out * k]
                pre_prev = prev[a_off[layer]: a_off[layer] + n_in]
                post_prev = prev[a_off[layer + 1]: a_off[layer + 1] + n_out]
                cm = scratch[k, :n_out]
                cm[:] = 0.0
                for i in range(n_in):
                    xi = xin[i]
                    pi = pre_prev[i]
                    row = i * n_out
                    deinterleave(c, row, n_out, t)
                    wr = w[row: row + n_out]
                    for j in range(n_out):
                        v = wr[j] * s + delta(t, j, pi, post_prev[j])
                        wr[j] = v
                        av = abs(v)
                        cm[j] = av if av > cm[j] else cm[j]
                        h[j] += xi * v
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

    @njit(nogil=True, cache=False)
    def flush(weights, coeffs, scales, acts, parity, sizes, w_off, c_off, a_off, normalize, limit, scratch):
        """Apply the update pending from the step whose activations are acts[parity].

        Leaves the true weights in `weights` (scales folded in, all set to 1).
        Returns 1 if the divergence guard fired, else 0.
        """
        last = acts[parity]
        diverged = 0
        for layer in range(sizes.shape[0] - 1):
            n_in = sizes[layer]
            n_out = sizes[layer + 1]
            w = weights[w_off[layer]: w_off[layer] + n_in * n_out]
            c = coeffs[c_off[layer]: c_off[layer] + n_in * n_out * k]
            pre = last[a_off[layer]: a_off[layer] + n_in]
            post = last[a_off[layer + 1]: a_off[layer + 1] + n_out]
            s = scales[layer]
            t = scratch[:k]
            for i in range(n_in):
                row = i * n_out
                deinterleave(c, row, n_out, t)
                for j in range(n_out):
                    w[row + j] = w[row + j] * s + delta(t, j, pre[i], post[j])
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

    return step, flush


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
