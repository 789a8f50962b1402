"""Reversible residual blocks (Gomez et al. 2017, as used by the Reformer).

A block maps (x1, x2) to y1 = x1 + F(x2), y2 = x2 + G(y1). Its input can be recomputed from
its output: x2 = y2 - G(y1), x1 = y1 - F(x2). A stack of such blocks therefore keeps only
its final output for backward and rebuilds every block's input on the way back, so the
activation memory is that of one block, whatever the depth. F and G are called again in the
backward pass, so any randomness in them (dropout, LSH rotations) must be the same both
times: each call records torch's RNG state and the backward replays it.

The parameters' gradients are accumulated into `.grad` inside the backward (as in RevNet
and the Reformer), so use `loss.backward()`, not `torch.autograd.grad`, through the
reversible path, and no double backward.
"""
from __future__ import annotations

import torch
from torch import nn


class Deterministic(nn.Module):
    """Wraps a module so that a second call can replay the random state of the first.

    `forward(x, record_rng=True)` stores the CPU (and, for CUDA inputs, the device) RNG
    state before running; `forward(x, set_rng=True)` runs under a forked RNG set to it.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.cpu_state = None
        self.cuda_devices, self.cuda_states = [], []

    def record_rng(self, *args):
        self.cpu_state = torch.get_rng_state()
        if torch.cuda.is_available() and any(a.is_cuda for a in args if torch.is_tensor(a)):
            self.cuda_devices = sorted({a.get_device() for a in args if torch.is_tensor(a) and a.is_cuda})
            self.cuda_states = [torch.cuda.get_rng_state(d) for d in self.cuda_devices]

    def forward(self, x, *, record_rng: bool = False, set_rng: bool = False, **kwargs):
        if record_rng:
            self.record_rng(x)
        if not set_rng:
            return self.net(x, **kwargs)
        with torch.random.fork_rng(devices=self.cuda_devices):
            torch.set_rng_state(self.cpu_state)
            for device, state in zip(self.cuda_devices, self.cuda_states):
                torch.cuda.set_rng_state(state, device)
            return self.net(x, **kwargs)


class ReversibleBlock(nn.Module):
    """One reversible residual block on a pair (x1, x2), each (batch, n, dim).

    `f` (typically attention) may take keyword arguments (e.g. `mask`); `g` (typically the
    feed-forward layer) takes none.
    """

    def __init__(self, f: nn.Module, g: nn.Module):
        super().__init__()
        self.f, self.g = Deterministic(f), Deterministic(g)

    def forward(self, x: torch.Tensor, f_kwargs: dict | None = None, record_rng: bool = False) -> torch.Tensor:
        """(batch, n, 2*dim) = [x1, x2] -> [y1, y2], with ordinary autograd."""
        f_kwargs = f_kwargs or {}
        x1, x2 = x.chunk(2, dim=-1)
        y1 = x1 + self.f(x2, record_rng=record_rng, **f_kwargs)
        y2 = x2 + self.g(y1, record_rng=record_rng)
        return torch.cat([y1, y2], dim=-1)

    def backward_pass(self, y: torch.Tensor, dy: torch.Tensor, f_kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Rebuild this block's input from its output `y` and turn dL/dy into dL/dx.

        Parameter gradients are accumulated into `.grad` along the way.
        """
        y1, y2 = y.chunk(2, dim=-1)
        dy1, dy2 = dy.chunk(2, dim=-1)
        with torch.enable_grad():
            y1_leaf = y1.detach().requires_grad_()
            gy1 = self.g(y1_leaf, set_rng=True)
            torch.autograd.backward(gy1, dy2)
        with torch.no_grad():
            x2 = y2 - gy1
            dx1 = dy1 + y1_leaf.grad
            del y1_leaf, gy1
        with torch.enable_grad():
            x2_leaf = x2.requires_grad_()
            fx2 = self.f(x2_leaf, set_rng=True, **f_kwargs)
            torch.autograd.backward(fx2, dx1)
        with torch.no_grad():
            x1 = y1 - fx2
            dx2 = dy2 + x2_leaf.grad
            x = torch.cat([x1, x2_leaf.detach()], dim=-1)
            dx = torch.cat([dx1, dx2], dim=-1)
        return x, dx


class _ReversibleFunction(torch.autograd.Function):
    """Runs the blocks without building a graph; saves only the stack's output."""

    @staticmethod
    def forward(ctx, x, blocks, f_kwargs):
        ctx.blocks, ctx.f_kwargs = blocks, f_kwargs
        with torch.no_grad():
            for block in blocks:
                x = block(x, f_kwargs, record_rng=True)
        ctx.save_for_backward(x.detach())
        return x

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        for block in reversed(ctx.blocks):
            y, dy = block.backward_pass(y, dy, ctx.f_kwargs)
        return dy, None, None


class ReversibleSequence(nn.Module):
    """A stack of `ReversibleBlock`s on (batch, n, 2*dim).

    With `reversible=True` (default) the backward recomputes activations block by block;
    with False the same blocks run under ordinary autograd (the reference, and the faster
    choice when memory is not the limit). Inputs that need no gradient skip the custom path.
    """

    def __init__(self, blocks: list[ReversibleBlock], reversible: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.reversible = reversible

    def forward(self, x: torch.Tensor, **f_kwargs) -> torch.Tensor:
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in self.parameters()))
        if self.reversible and needs_grad:
            if not x.requires_grad:
                # The custom Function's backward (which also fills the parameters' grads) only
                # runs if its tensor input needs a gradient.
                x = x.detach().requires_grad_()
            return _ReversibleFunction.apply(x, self.blocks, f_kwargs)
        for block in self.blocks:
            x = block(x, f_kwargs)
        return x


class FeedForward(nn.Module):
    """Position-wise MLP dim -> mult*dim -> dim with GELU and optional dropout."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(dim * mult, dim))

    def forward(self, x):
        return self.net(x)


class PreNorm(nn.Module):
    """LayerNorm then `fn`; keyword arguments go to `fn`."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm, self.fn = nn.LayerNorm(dim), fn

    def forward(self, x, **kwargs):
        return self.fn(self.norm(x), **kwargs)


class ReversibleTransformer(nn.Module):
    """Reformer-style encoder stack: (batch, n, dim) -> (batch, n, dim).

    The input is duplicated into (x1, x2) = (x, x), run through `depth` reversible blocks
    with F = PreNorm(attention) and G = PreNorm(feed-forward), and the two halves averaged.
    `attention_factory()` builds one attention module per block (any `make_attention` result).
    """

    def __init__(self, dim: int, depth: int, attention_factory, ff_mult: int = 4,
                 dropout: float = 0.0, reversible: bool = True):
        super().__init__()
        blocks = [ReversibleBlock(PreNorm(dim, attention_factory()), PreNorm(dim, FeedForward(dim, ff_mult, dropout)))
                  for _ in range(depth)]
        self.layers = ReversibleSequence(blocks, reversible)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        kwargs = {} if mask is None else {"mask": mask}
        y = self.layers(torch.cat([x, x], dim=-1), **kwargs)
        y1, y2 = y.chunk(2, dim=-1)
        return (y1 + y2) / 2
