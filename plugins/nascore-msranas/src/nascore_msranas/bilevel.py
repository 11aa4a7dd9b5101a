"""The bilevel architecture step of DARTS (Liu et al., Section 2.3), which MS-RANAS uses
unchanged (Section 3.1 and 4: "the architecture search phase ... following the
methodology proposed by Liu et al.").

The architecture ``alpha`` minimizes the validation loss ``L_val(w*(alpha), alpha)``
where ``w*`` minimizes the training loss.  The *first-order* approximation takes
``w* ~ w`` (gradient ``dL_val/dalpha``); the *second-order* one takes one virtual SGD
step ``w' = w - xi (momentum v + dL_train/dw + lambda w)`` (DARTS Eq. 6-7) and
approximates the Hessian-vector product of Eq. 7 with central finite differences
(DARTS Eq. 8):

    grad = dL_val(w', a)/da - xi * (dL_train(w+, a)/da - dL_train(w-, a)/da) / (2 eps)
    w+- = w +- eps * dL_val(w', a)/dw',   eps = 0.01 / ||dL_val(w', a)/dw'||
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

LossFn = Callable[[object], torch.Tensor]


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def first_order_grads(loss_fn: LossFn, valid_batch, alphas: Sequence[torch.Tensor], with_loss: bool = False):
    """``dL_val(w, alpha)/dalpha`` (DARTS first-order approximation, ``xi = 0``); with
    ``with_loss`` also the (detached) validation loss."""
    loss = loss_fn(valid_batch)
    grads = _grads(loss, alphas)
    return (grads, loss.detach()) if with_loss else grads


def virtual_step(weights: Sequence[torch.Tensor], train_grads: Sequence[torch.Tensor], xi: float,
                 momentum: float = 0.0, weight_decay: float = 0.0, buffers: Sequence | None = None) -> None:
    """Replace ``w`` in place by ``w - xi (momentum * v + g + weight_decay * w)``, the
    step SGD with momentum would take (DARTS's unrolled model)."""
    buffers = buffers if buffers is not None else [None] * len(weights)
    with torch.no_grad():
        for p, g, v in zip(weights, train_grads, buffers):
            step = g + weight_decay * p
            if v is not None and momentum:
                step = step + momentum * v
            p.sub_(xi * step)


def second_order_grads(loss_fn: LossFn, train_batch, valid_batch, weights: Sequence[torch.Tensor],
                       alphas: Sequence[torch.Tensor], xi: float, momentum: float = 0.0,
                       weight_decay: float = 0.0, buffers: Sequence | None = None,
                       eps: float = 0.01) -> list[torch.Tensor]:
    """The second-order architecture gradient (DARTS Eq. 7 with Eq. 8); the weights are
    restored before returning."""
    weights = list(weights)
    backup = [p.detach().clone() for p in weights]
    try:
        virtual_step(weights, _grads(loss_fn(train_batch), weights), xi, momentum, weight_decay, buffers)
        grads = _grads(loss_fn(valid_batch), list(alphas) + weights)
        d_alpha, d_w = grads[:len(alphas)], grads[len(alphas):]
        norm = torch.sqrt(sum((g * g).sum() for g in d_w))
        if float(norm) == 0.0:
            return d_alpha
        r = eps / norm
        hessian = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, b, g in zip(weights, backup, d_w):
                    p.copy_(b + sign * r * g)
            hessian.append(_grads(loss_fn(train_batch), alphas))
        return [da - xi * (gp - gn) / (2 * r) for da, gp, gn in zip(d_alpha, *hessian)]
    finally:
        with torch.no_grad():
            for p, b in zip(weights, backup):
                p.copy_(b)


def architecture_step(optimizer: torch.optim.Optimizer, grads: Sequence[torch.Tensor],
                      alphas: Sequence[torch.Tensor]) -> None:
    """Apply architecture gradients with the architecture optimizer (Adam in DARTS)."""
    optimizer.zero_grad(set_to_none=True)
    for a, g in zip(alphas, grads):
        a.grad = g.detach().clone()
    optimizer.step()
