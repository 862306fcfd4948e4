"""The exponential moving average of a network's weights, which training validates and
saves as ``best.pth`` when ``ema_decay`` > 0.

Every floating tensor of the network (parameters and BatchNorm running statistics) is
averaged after each optimiser step with the decay ``min(ema_decay, (1 + step) / (10 +
step))``; the BatchNorm batch counters are copied.
"""

from __future__ import annotations

import copy

import torch


def decay_at(ema_decay: float, step: int) -> float:
    """The decay of the moving average at optimisation step ``step`` (counted from 0):
    ``min(ema_decay, (1 + step) / (10 + step))``, so that the average follows the fast
    early changes instead of remembering the random initial weights."""
    return min(ema_decay, (1.0 + step) / (10.0 + step))


class MovingAverage:
    """The averaged copy of ``net`` (same device and memory layout, eval mode, no
    gradients); :meth:`follow` names the trained network it averages."""

    def __init__(self, net: torch.nn.Module, ema_decay: float) -> None:
        self.ema_decay = float(ema_decay)
        self.net = copy.deepcopy(net).eval().requires_grad_(False)
        self._pairs: tuple[list, list, list, list] = ([], [], [], [])

    def follow(self, trained: torch.nn.Module) -> None:
        """Match the averaged network's tensors with the trained one's by name: floating
        parameters and buffers are averaged, the others copied."""
        raw = trained.state_dict()
        avg_to, avg_from, copy_to, copy_from = [], [], [], []
        for name, target in self.net.state_dict().items():
            if target.is_floating_point():
                avg_to.append(target)
                avg_from.append(raw[name])
            else:
                copy_to.append(target)
                copy_from.append(raw[name])
        self._pairs = (avg_to, avg_from, copy_to, copy_from)

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the averaged weights towards the trained ones (after optimiser step
        ``step``)."""
        avg_to, avg_from, copy_to, copy_from = self._pairs
        torch._foreach_lerp_(avg_to, avg_from, 1.0 - decay_at(self.ema_decay, step))
        for target, source in zip(copy_to, copy_from):
            target.copy_(source)
