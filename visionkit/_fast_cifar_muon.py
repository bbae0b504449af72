"""airbench94_muon's optimizer: Muon on the convolution filters, Nesterov SGD on the rest (private).

Keller Jordan's ``airbench94_muon.py`` (KellerJordan/cifar10-airbench) trains airbench94's
network to the same 94 % in 8 epochs of batch 2000 instead of 9.9 of batch 1024: about
a fifth fewer training images, so a fifth less time on any machine. It changes the
optimizer and drops the lookahead; the network, data pipeline and test-time
augmentation are airbench94's (``_fast_cifar``), with the head scaled as below.

* ``newton_schulz``: the quintic Newton-Schulz iteration that orthogonalises a matrix
  (``U S V^T`` to about ``U V^T``);
* ``FastMuon``: Muon (momentum 0.6, Nesterov) on every 4-D kernel, the kernel rescaled
  to norm ``sqrt(filters)`` before each step; PyTorch's Nesterov SGD (momentum 0.85,
  coupled weight decay) on the BatchNorm biases, the whitening bias (its rate decaying
  to zero over the first 3 epochs) and the head; every rate decays linearly to zero;
* ``make_muon_optimizer``: the reference's rates for a run.

Keras' own ``keras.optimizers.Muon`` applies Muon to 2-D weights only (4-D kernels take
its AdamW step), so it cannot run this recipe: hence ``FastMuon``.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import keras
from keras import ops

__all__ = ["MUON_HYPER", "FastMuon", "make_muon_optimizer", "newton_schulz"]

#: airbench94_muon's hyperparameters, in its units (rates for a loss summed over the batch).
MUON_HYPER: Any = MappingProxyType({
    "filter_lr": 0.24,
    "filter_momentum": 0.6,
    "bias_lr": 0.053,
    "head_lr": 0.67,
    "momentum": 0.85,
    "weight_decay": 2e-6,        # per example: ``wd = 2e-6 · batch`` in the reference
    "ns_steps": 3,
    "whiten_bias_epochs": 3,
})

#: The quintic's coefficients (airbench94_muon's): the steepest slope at zero that still converges.
_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(matrix: Any, *, steps: int = MUON_HYPER["ns_steps"], eps: float = 1e-7) -> Any:
    """Orthogonalise a 2-D float ``matrix`` ``(m, n)``: about ``U V^T`` of its SVD ``U S V^T``.

    The quintic iteration of airbench94_muon (singular values end in about [0.5, 1.5],
    which trains as well as exactly 1), computed in the matrix's dtype (the reference:
    bfloat16). Returns a matrix of the same shape and dtype.
    """
    a, b, c = _NS_COEFFICIENTS
    x = matrix / (ops.sqrt(ops.sum(ops.square(matrix))) + eps)  # top singular value <= 1
    tall = matrix.shape[0] > matrix.shape[1]
    if tall:
        x = ops.transpose(x)
    for _ in range(int(steps)):
        gram = ops.matmul(x, ops.transpose(x))
        poly = b * gram + c * ops.matmul(gram, gram)
        x = a * x + ops.matmul(poly, x)
    return ops.transpose(x) if tall else x


@keras.saving.register_keras_serializable(package="visionkit")
class FastMuon(keras.optimizers.Optimizer):
    """airbench94_muon's optimizer for the whole model, as one Keras optimizer.

    ``learning_rate`` is the schedule's factor (the recipe: 1 decaying linearly to 0);
    each variable's rate is that factor times its group's base rate:

    * 4-D kernels (the convolutions): Muon at ``filter_rate``. The momentum buffer sums
      gradients (``b = filter_momentum·b + g``), the Nesterov step ``g + filter_momentum·b``
      is reshaped to ``(filters, kh·kw·channels)`` and orthogonalised
      (``newton_schulz``); the kernel is rescaled to norm ``sqrt(filters)`` and then moves
      by ``-rate`` times that. No weight decay.
    * The rest: PyTorch's Nesterov SGD at ``bias_rate`` (1-D weights: the BatchNorm
      biases) or ``head_rate`` (2-D: the dense head), on ``gradient_scale·g +
      coupled_decay_over_rate·w`` (``gradient_scale``: the batch, as the reference sums
      its loss where Keras averages it). Weights whose path ends in one of
      ``whiten_names`` take ``bias_rate`` decaying linearly to 0 over
      ``whiten_steps`` steps instead of the shared factor.

    The Newton-Schulz iteration runs in float32 (the variables' dtype), where the
    reference runs it in bfloat16 on a GPU. On a 2-core AVX512-BF16 CPU the six filter
    banks of the 94 network take 110 ms in float32 and 45 ms in bfloat16 (under load);
    bfloat16 would save about 1.5 % of a step of batch 2000, not measured over whole runs.
    """

    def __init__(self, learning_rate: Any = 1.0, *, filter_rate: float = MUON_HYPER["filter_lr"],
                 filter_momentum: float = MUON_HYPER["filter_momentum"], bias_rate: float = MUON_HYPER["bias_lr"],
                 head_rate: float = MUON_HYPER["head_lr"], momentum: float = MUON_HYPER["momentum"],
                 weight_decay_total: float = 0.0, gradient_scale: float = 1.0, whiten_steps: int = 0,
                 whiten_names: Sequence[str] = ("whiten/bias",), ns_steps: int = MUON_HYPER["ns_steps"],
                 name: str = "fast_muon", **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.filter_rate, self.filter_momentum = float(filter_rate), float(filter_momentum)
        self.bias_rate, self.head_rate, self.momentum = float(bias_rate), float(head_rate), float(momentum)
        self.weight_decay_total, self.gradient_scale = float(weight_decay_total), float(gradient_scale)
        self.whiten_steps, self.whiten_names = int(whiten_steps), tuple(whiten_names)
        self.ns_steps = int(ns_steps)
        self.buffers: list[Any] = []
        self._whiten: set[Any] = set()

    def build(self, variables: Any) -> None:
        if self.built:
            return
        super().build(variables)
        self.buffers = [self.add_variable_from_reference(v, name="momentum") for v in variables]
        # by key: the TensorFlow backend's update_step sees the backing tf.Variable, not the path
        self._whiten = {self._var_key(v) for v in variables if str(v.path).endswith(self.whiten_names)}

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        gradient = ops.cast(gradient, variable.dtype)
        factor = ops.cast(learning_rate, variable.dtype)
        buffer = self.buffers[self._get_variable_index(variable)]
        if len(variable.shape) == 4:
            self._muon_step(gradient, variable, buffer, factor * self.filter_rate)
            return
        if self._var_key(variable) in self._whiten:
            done = ops.cast(self.iterations, variable.dtype) / float(max(self.whiten_steps, 1))
            base, rate = self.bias_rate, self.bias_rate * ops.maximum(1.0 - done, 0.0)
        else:
            base = self.head_rate if len(variable.shape) == 2 else self.bias_rate
            rate = factor * base
        momentum = ops.cast(self.momentum, variable.dtype)
        gradient = self.gradient_scale * gradient + (self.weight_decay_total / base) * variable
        self.assign(buffer, buffer * momentum + gradient)
        self.assign_sub(variable, rate * (gradient + momentum * buffer))

    def _muon_step(self, gradient: Any, variable: Any, buffer: Any, rate: Any) -> None:
        momentum = ops.cast(self.filter_momentum, variable.dtype)
        self.assign(buffer, buffer * momentum + gradient)
        step = gradient + momentum * buffer
        filters = int(variable.shape[-1])
        # (kh, kw, in, out) -> (out, kh·kw·in): the reference's (out, in·kh·kw) up to a
        # permutation of the columns, which orthogonalisation commutes with
        update = newton_schulz(ops.transpose(ops.reshape(step, (-1, filters))), steps=self.ns_steps)
        update = ops.reshape(ops.transpose(update), variable.shape)
        norm = ops.sqrt(ops.sum(ops.square(variable)))
        self.assign(variable, variable * (filters ** 0.5 / norm) - rate * update)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filter_rate": self.filter_rate, "filter_momentum": self.filter_momentum,
                "bias_rate": self.bias_rate, "head_rate": self.head_rate, "momentum": self.momentum,
                "weight_decay_total": self.weight_decay_total, "gradient_scale": self.gradient_scale,
                "whiten_steps": self.whiten_steps, "whiten_names": list(self.whiten_names),
                "ns_steps": self.ns_steps}


def make_muon_optimizer(*, learning_rate: float | None, schedule: str | None, total_steps: int,
                        steps_per_epoch: int, global_batch: int) -> FastMuon:
    """airbench94_muon's optimizer for a run of ``total_steps`` steps of ``global_batch`` examples.

    ``learning_rate`` is the filters' Muon rate (``None``: 0.24); the other groups' rates
    scale with it. ``schedule`` ``None`` is the reference's linear decay to zero, else
    ``"constant"`` or ``"cosine"``.
    """
    scale = float(learning_rate) / MUON_HYPER["filter_lr"] if learning_rate is not None else 1.0
    steps = max(int(total_steps), 1)
    if schedule is None:
        factor: Any = keras.optimizers.schedules.PolynomialDecay(1.0, steps, end_learning_rate=0.0, power=1.0)
    elif schedule == "cosine":
        factor = keras.optimizers.schedules.CosineDecay(1.0, decay_steps=steps)
    else:
        factor = 1.0
    return FastMuon(factor, filter_rate=MUON_HYPER["filter_lr"] * scale, bias_rate=MUON_HYPER["bias_lr"] * scale,
                    head_rate=MUON_HYPER["head_lr"] * scale, weight_decay_total=MUON_HYPER["weight_decay"] * global_batch,
                    gradient_scale=float(global_batch),
                    whiten_steps=MUON_HYPER["whiten_bias_epochs"] * int(steps_per_epoch))
