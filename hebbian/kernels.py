"""Numba kernels: one call per network step, forward pass fused with the plasticity update
(and the static network's plain forward pass, `static_step`).

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

Coefficients are read from `terms`: per synapse the four products eta*A, eta*B, eta*C,
eta*D (eta = 1 for rules without `_lr`), one contiguous run per term, which the network
computes from the flat parameter vector at every reset (about 0.2 ms for the CarRacing
stack, once per episode). Folding eta in streams 16 instead of 20 bytes of coefficients
per synapse per step, and the unit-stride runs let the row loop run on SIMD lanes; read
in the parameter layout, (n_in, n_out, k) interleaved, every load would have stride k.
The folded products round differently from eta * (...): float32 rounding, ~1e-7 relative per term.

One compiled kernel serves all rules (see `TERM_SETS`), so it is cached on disk
(`cache=True`): workers and later processes load it instead of compiling again. The row
loops of a layer live in their own (not inlined) function, `_layer_rows`: compiled apart
from the kernel's slicing of one activation buffer, LLVM vectorises them with runtime
alias checks, which made the CarRacing step about 1.3x faster.

Divergence guard
----------------
The fast loop is branch-free; after each layer the kernel checks that every pre-activation
is finite and every |w| <= limit. If not (rare: a diverging rule), a slow pass sets NaN
weights to 0, clips the rest to [-limit, limit], recomputes the layer and raises the
`diverged` flag, so actions stay finite and the fitness problem can see what happened.

Arrays shared by the kernels (float32 unless noted; L = number of layers, S = synapses):
    weights   (S,)                all layers' weights, layer l at w_off[l], row-major (n_in, n_out)
    terms     (4 * S,)            eta * term t of synapse s at t * S + s (s numbered as in
                                  weights; t = 0..3 for A, B, C, D; absent terms' runs unread)
    scales    (L,)                factor that turns stored weights into the layer's true weights
    acts      (2, sum sizes)      activations of this step (row parity) and the previous one,
                                  after each layer's activation (the output layer's included)
    sizes, w_off, a_off           int64 layout tables
"""
from __future__ import annotations

import numpy as np
from numba import njit

from hebbian.portable_math import tanh32
from hebbian.rules import Rule

ACTIVATIONS = {"linear": 0, "tanh": 1, "relu": 2}


# Which of B, C, D a rule evolves (A always is): eta is folded into `terms`, so the rules
# with and without `_lr` share a kernel path. The kernels branch on the set once per layer
# and pass the flags as literals, so every branch compiles to a loop without the absent
# terms, while one cached kernel serves every rule.
TERM_SETS = ((False, False, False), (False, False, True), (True, True, False), (True, True, True))
NUM_TERMS = 4


def rule_code(rule: Rule) -> int:
    """The kernels' code for `rule`: its index in TERM_SETS."""
    return TERM_SETS.index(tuple(rule.index(t) >= 0 for t in ("B", "C", "D")))


def fold_terms(coeffs: np.ndarray, rule: Rule, out: np.ndarray) -> None:
    """Write the kernels' `terms` for `rule` into `out`.

    coeffs: (S, k) float32, the flat parameter layout of all layers' coefficients.
    out: (NUM_TERMS, S) float32; row t gets eta * term t (A, B, C, D), absent rows are left alone.
    """
    eta = coeffs[:, rule.index("eta")] if rule.index("eta") >= 0 else None
    for t, name in enumerate(("A", "B", "C", "D")):
        col = rule.index(name)
        if col < 0:
            continue
        if eta is None:
            out[t] = coeffs[:, col]
        else:
            np.multiply(coeffs[:, col], eta, out=out[t])


@njit(inline="always")
def _dw(c, total, b, pre, post, has_b, has_c, has_d):
    # (eA*pre + eC)*post + (eB*pre + eD) = eta * (A*pre*post + B*pre + C*post + D) for
    # synapse b; eta * term t sits at c[t * total + b]. The flags are literals, so absent
    # terms fold away at compile time.
    a = c[b] * pre
    if has_c:
        a += c[np.uint64(2) * total + b]
    d = a * post
    if has_b:
        d += c[total + b] * pre
    if has_d:
        d += c[np.uint64(3) * total + b]
    return d


@njit(inline="always")
def _rows(w, c, off, n_in, n_out, s, pre, post, x, h, cm, has_b, has_c, has_d):
    # Per row i of a layer: the pending update, the |w| column max and the forward sum.
    # Rows go in pairs, so post[j], h[j] and cm[j] are loaded and stored once per two rows
    # (about 6% faster on the CarRacing stack); an odd last row goes alone. Unsigned indices
    # spare Numba's negative-index wraparound and every coefficient read comes from the one
    # array c: both keep LLVM able to vectorise the inner loops.
    total = np.uint64(c.shape[0] // NUM_TERMS)
    n_in = np.uint64(n_in)
    n_out = np.uint64(n_out)
    one = np.uint64(1)
    for i in range(np.uint64(0), n_in - n_in % np.uint64(2), np.uint64(2)):
        row = i * n_out
        row2 = row + n_out
        crow = np.uint64(off) + row
        crow2 = crow + n_out
        p1, x1, p2, x2 = pre[i], x[i], pre[i + one], x[i + one]
        for j in range(n_out):
            pj = post[j]
            v = w[row + j] * s + _dw(c, total, crow + j, p1, pj, has_b, has_c, has_d)
            u = w[row2 + j] * s + _dw(c, total, crow2 + j, p2, pj, has_b, has_c, has_d)
            w[row + j] = v
            w[row2 + j] = u
            m = max(abs(v), abs(u))
            cm[j] = m if m > cm[j] else cm[j]
            h[j] += x1 * v + x2 * u
    if n_in % np.uint64(2):
        i = n_in - one
        row = i * n_out
        crow = np.uint64(off) + row
        p1, x1 = pre[i], x[i]
        for j in range(n_out):
            v = w[row + j] * s + _dw(c, total, crow + j, p1, post[j], has_b, has_c, has_d)
            w[row + j] = v
            av = abs(v)
            cm[j] = av if av > cm[j] else cm[j]
            h[j] += x1 * v


@njit(nogil=True, cache=True)
def _layer_rows(code, w, c, off, n_in, n_out, s, pre, post, x, h, cm):
    """One layer's fused update + forward: w (n_in*n_out,) stored weights, updated in place;
    c the kernels' terms with this layer's synapses from `off`; s the stored weights' scale;
    pre (n_in,), post (n_out,) the previous step's activations; x (n_in,) this step's input;
    h (n_out,) += x . W_new; cm (n_out,) = max(cm, |W_new| per column)."""
    if code == 3:
        _rows(w, c, off, n_in, n_out, s, pre, post, x, h, cm, True, True, True)
    elif code == 2:
        _rows(w, c, off, n_in, n_out, s, pre, post, x, h, cm, True, True, False)
    elif code == 1:
        _rows(w, c, off, n_in, n_out, s, pre, post, x, h, cm, False, False, True)
    else:
        _rows(w, c, off, n_in, n_out, s, pre, post, x, h, cm, False, False, False)


@njit(inline="always")
def _layer(buf, weights, sizes, w_off, a_off, layer):
    """Layer `layer`'s views: (n_in, n_out, its input in buf, its output in buf, its weights)."""
    n_in = sizes[layer]
    n_out = sizes[layer + 1]
    return (n_in, n_out, buf[a_off[layer]: a_off[layer] + n_in], buf[a_off[layer + 1]: a_off[layer + 1] + n_out],
            weights[w_off[layer]: w_off[layer] + n_in * n_out])


@njit(nogil=True, cache=True)
def hebbian_step(x, weights, terms, code, scales, acts, parity, pending, sizes, w_off, a_off,
                 hidden_act, output_act, normalize, limit, colmax):
    """One network step; returns 1 if the divergence guard fired, else 0.

    x: (sizes[0],) input. Writes this step's activations into acts[parity]; the output
    layer's values, activated with `output_act`, are acts[parity, a_off[L]:]. Activated
    values are what is stored, so they are the post-synaptic activity of the next update
    (and of `hebbian_flush`), for the output layer as for the hidden ones.
    code: the rule (`rule_code`). hidden_act, output_act: codes from ACTIVATIONS
    (0 = linear leaves the values as they are). colmax: float32 scratch of 2 x max n_out.
    """
    cur = acts[parity]
    prev = acts[1 - parity]
    num_layers = sizes.shape[0] - 1
    diverged = 0
    cur[: sizes[0]] = x
    for layer in range(num_layers):
        n_in, n_out, xin, h, w = _layer(cur, weights, sizes, w_off, a_off, layer)
        s = scales[layer]
        h[:] = 0.0
        if pending:
            _, _, pre_prev, post_prev, _ = _layer(prev, weights, sizes, w_off, a_off, layer)
            cm = colmax[:n_out]
            cm[:] = 0.0
            _layer_rows(code, w, terms, w_off[layer], n_in, n_out, s, pre_prev, post_prev, xin, h, cm)
            mx = cm.max()
            if not (mx <= limit and _all_finite(h)):
                diverged = 1
                mx = _repair_layer(w, xin, h, n_in, n_out, limit)
            if normalize and mx > 0:
                inv = np.float32(1.0) / mx
                h *= inv
                scales[layer] = inv
            else:
                scales[layer] = 1.0
        else:
            # The first step of an episode: the weights as drawn (or co-evolved), no update
            # pending. The guard covers it too, so an absurd initial scale or a non-finite
            # input can never reach the environment as a NaN action.
            mw = np.float32(0.0)
            for i in range(n_in):
                xi = xin[i]
                row = i * n_out
                for j in range(n_out):
                    v = w[row + j]
                    h[j] += xi * v
                    av = abs(v)
                    mw = av if av > mw else mw
            h *= s
            if not (mw * s <= limit and _all_finite(h)):
                diverged = 1
                _repair_layer(w, xin, h, n_in, n_out, limit)
                scales[layer] = 1.0
        _activate(h, hidden_act if layer < num_layers - 1 else output_act)
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
        n_in, n_out, pre, post, w = _layer(last, weights, sizes, w_off, a_off, layer)
        s = scales[layer]
        h = colmax[:n_out]   # a flush has no forward pass: this sum is scratch, never read
        cm = colmax[n_out: 2 * n_out]
        _layer_rows(code, w, terms, w_off[layer], n_in, n_out, s, pre, post, pre, h, cm)
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
def static_step(x, weights, sizes, w_off, a_off, acts, hidden_act, output_act):
    """The static network's step: each layer h = act(x @ W); returns 1 if an output was not finite.

    x: (sizes[0],) input; weights: all layers', layer l at w_off[l], row-major (n_in, n_out);
    acts: (sum sizes,) float32, layer l's activations at a_off[l]: the output layer's, activated
    with `output_act`, are acts[a_off[L]:]. Non-finite outputs (overflowing weights, a NaN input)
    are set to 0, so no NaN reaches an environment.

    Compiled for the same reason as the Hebbian kernel: the sums run in a fixed order (input by
    input, each output's lane in turn, no reassociation) and tanh is `portable_math.tanh32`, so
    a step gives the same bits on every x86-64, where BLAS and NumPy's SIMD tanh pick their code
    by CPU (and the C library's float tanh may differ between its versions).
    """
    num_layers = sizes.shape[0] - 1
    acts[: sizes[0]] = x
    for layer in range(num_layers):
        n_in, n_out, xin, h, w = _layer(acts, weights, sizes, w_off, a_off, layer)
        h[:] = 0.0
        for i in range(n_in):
            xi = xin[i]
            row = i * n_out
            for j in range(n_out):
                h[j] += xi * w[row + j]
        _activate(h, hidden_act if layer < num_layers - 1 else output_act)
    out = acts[a_off[num_layers]:]
    if _all_finite(out):
        return 0
    for j in range(out.shape[0]):
        if not np.isfinite(out[j]):
            out[j] = 0.0
    return 1


@njit(nogil=True, cache=True)
def _repair_layer(w, xin, h, n_in, n_out, limit):
    """Slow path of the divergence guard: NaN -> 0, clip to +-limit, recompute h (non-finite
    sums -> 0); returns max |w|."""
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
    for j in range(n_out):  # a non-finite input (e.g. from an encoder's NaN) gives no usable sum
        if not np.isfinite(h[j]):
            h[j] = 0.0
    return mx


@njit(nogil=True, cache=True)
def _all_finite(h):
    # A loop, not np.isfinite(h).all(): that would allocate a temporary every step.
    for j in range(h.shape[0]):
        if not np.isfinite(h[j]):
            return False
    return True


@njit(nogil=True, cache=True, error_model="numpy")  # tanh32 divides: no zero check, vectorised
def _activate(h, code):
    if code == 1:
        for j in range(h.shape[0]):
            h[j] = tanh32(h[j])
    elif code == 2:
        for j in range(h.shape[0]):
            h[j] = max(h[j], np.float32(0.0))
