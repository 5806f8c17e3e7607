"""Layer-wise learning rates as an optimizer wrapper.

Scaling a variable's *gradient* is not a per-variable learning rate under Adam/AdamW:
Adam divides by the running gradient magnitude, so the scale cancels. This wrapper
scales the *step* instead: it hands the inner optimizer's `update_step` a learning rate
multiplied by the variable's factor, and applies AdamW's decoupled weight decay with the
same factor (as per-group learning rates do in other frameworks). Keras has no such
wrapper: `MultiOptimizer` splits the state across several optimizers and expects every
variable in every step, which breaks gradual unfreezing.

It also sums an embedding gradient's repeated rows before the inner update (see
`backends.summed_gradient`), which Keras' optimizers get wrong on TensorFlow; so
`compile_model` wraps every optimizer in it, with no multipliers if none are asked for.
"""

import collections
import re

import keras
from keras.saving import deserialize_keras_object, serialize_keras_object

from mtl_keras.backends import summed_gradient
from mtl_keras.errors import InputError
from mtl_keras.model.bert_layers import EMBEDDING_LAYERS, transformer_layer


def variable_path(variable):
    """`layer/.../weight` for a Keras variable or the raw tf.Variable behind it."""
    path = getattr(variable, "path", None) or variable.name
    return path[:-2] if path.endswith(":0") else path


@keras.saving.register_keras_serializable(package="mtl_keras")
class LayerwiseLR(keras.optimizers.Optimizer):
    """Give each variable group its own step size.

    Args:
        inner_optimizer: any Keras optimizer (SGD, Adam, AdamW, ...), with a constant
            learning rate or a schedule.
        multipliers: dict of regular expression -> factor. Each variable's path (e.g.
            `transformer_layer_3/self_attention_layer/query/kernel`) is searched with
            the patterns in order; the first match sets its factor; no match means 1.0.
    """

    def __init__(self, inner_optimizer, multipliers, name=None, **kwargs):
        super().__init__(learning_rate=0.0, name=name or "layerwise_lr", **kwargs)
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise InputError(f"inner_optimizer must be a Keras optimizer, got {inner_optimizer!r}.")
        self.inner_optimizer = inner_optimizer
        self.multipliers = dict(multipliers)
        try:
            self._patterns = [(re.compile(p), float(f)) for p, f in self.multipliers.items()]
        except (re.error, TypeError, ValueError) as error:
            raise InputError(f"bad multipliers {self.multipliers!r}: {error}.") from None
        self._wrap_inner()

    def factor(self, variable):
        """The learning-rate multiplier of one variable (first matching pattern)."""
        path = variable_path(variable)
        return next((f for pattern, f in self._patterns if pattern.search(path)), 1.0)

    def _wrap_inner(self):
        inner = self.inner_optimizer
        update_step = inner.update_step
        apply_weight_decay = inner._apply_weight_decay

        def scaled_update_step(gradient, variable, learning_rate):
            gradient = summed_gradient(gradient)  # correct Adam for embeddings on TF
            return update_step(gradient, variable, learning_rate * self.factor(variable))

        def scaled_weight_decay(variables):
            # Decay is `variable -= lr * wd * variable`: scaling wd per group by the
            # factor scales that group's decay step exactly as its learning rate.
            weight_decay = inner.weight_decay
            if not weight_decay:
                return apply_weight_decay(variables)
            groups = collections.defaultdict(list)
            for variable in variables:
                groups[self.factor(variable)].append(variable)
            try:
                for factor, group in groups.items():
                    inner.weight_decay = weight_decay * factor
                    apply_weight_decay(group)
            finally:
                inner.weight_decay = weight_decay

        inner.update_step = scaled_update_step
        inner._apply_weight_decay = scaled_weight_decay

    def build(self, var_list):
        if not self.inner_optimizer.built:  # a built one keeps its state (moments, step)
            self.inner_optimizer.build(var_list)
        super().build(var_list)

    def apply(self, grads, trainable_variables=None):
        return self.inner_optimizer.apply(grads, trainable_variables)

    def train(self, variables):
        """Say which of the variables it was built for the model trains now (JAX).

        JAX's `fit` hands `stateless_apply` the values of the model's trainable variables
        alone; Keras' own matches them to the list the optimizer was built with, which a
        stage of gradual unfreezing (a subset) or the heads model (another order) breaks.
        `compile_model` calls this, so the values are matched to the right variables.
        """
        self._check_variables_are_known(variables)
        # Set past Keras' attribute tracking: these are the model's variables, not state.
        object.__setattr__(self, "_trained", list(variables))

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        """Keras' `stateless_apply` over the variables of the last `train` call."""
        trained = getattr(self, "_trained", None) or self._trainable_variables
        if len(trained) != len(trainable_variables):
            raise ValueError(
                f"{len(trainable_variables)} trainable values for {len(trained)} variables: "
                "compile the model with `compile_model` after changing what is trainable."
            )
        mapping = [
            *zip(trained, trainable_variables, strict=True),
            *zip(self.variables, optimizer_variables, strict=True),
        ]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self.apply(grads, trained)
        return (
            [scope.get_current_value(v) for v in trained],
            [scope.get_current_value(v) for v in self.variables],
        )

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        if hasattr(self, "inner_optimizer"):
            self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {
            "name": self.name,
            "inner_optimizer": serialize_keras_object(self.inner_optimizer),
            "multipliers": self.multipliers,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = deserialize_keras_object(
            config.pop("inner_optimizer"), custom_objects=custom_objects
        )
        return cls(inner, **config)


def layer_decay_multipliers(num_layers, decay, head_multiplier=1.0):
    """Layer-wise learning-rate decay for a keras-hub BERT (LLRD).

    Top transformer layer gets decay^1, the one below decay^2, ..., the bottom layer
    decay^L and the embeddings decay^(L+1); everything else (the heads) gets
    `head_multiplier`.
    """
    if not 0 < decay <= 1:
        raise InputError(f"decay must be in (0, 1], got {decay}.")
    multipliers = {f"^{name}/": decay ** (num_layers + 1) for name in EMBEDDING_LAYERS}
    for index in range(num_layers):
        multipliers[f"^{transformer_layer(index)}/"] = decay ** (num_layers - index)
    if head_multiplier != 1.0:
        multipliers[".*"] = head_multiplier
    return multipliers
