"""Flip and shift augmentation as Keras layers in the training graph (``augment_in_graph``).

By default augmented batches are prepared by numpy in worker threads
(``training.AugmentedBatches``) that share the CPU cores with TensorFlow. With
``augment_in_graph=True`` the flips and shifts run instead as Keras preprocessing layers in
front of the network: TensorFlow's own kernels apply them inside each training step (on
the GPU, where there is one), and they pass images through unchanged when predicting.
``benchmarks/throughput_factors.py`` measures both ways side by side.

Only the recipe's geometric augmentation has an in-graph form: ``RandomFlip`` with
probability 0.5 and ``RandomShift``. Shifts are drawn uniformly from
``[-max_shift, max_shift]`` pixels and rounded to whole pixels (nearest neighbour), with
the border filled by reflection as in ``perturbations.random_shift``; the end values come
half as often as with the numpy integer draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from .transformers import PerturbationTransformer, RandomFlip, RandomShift

__all__ = ["augmentation_layers", "numpy_augmentation", "with_graph_augmentation"]


def _shift_pixels(max_shift: float, size: int) -> int:
    # An int is pixels, a float in (0, 1) a fraction of the size (as random_shift reads it).
    return round(max_shift * size) if isinstance(max_shift, float) else int(max_shift)


def augmentation_layers(
    steps: Sequence[PerturbationTransformer], image_shape: Sequence[int], *, seed: int
) -> list[keras.layers.Layer]:
    """Keras layers doing what ``steps`` (RandomFlip, RandomShift) do to training images.

    Raises
    ------
    ValueError
        For a step without an in-graph form (noise, rotation, corruptions, AugMix) or a
        flip probability other than 0.5.
    """
    height, width = image_shape[:2]
    built = []
    for i, step in enumerate(steps):
        if isinstance(step, RandomFlip) and step.probability == 0.5:
            built.append(layers.RandomFlip("horizontal", seed=seed + i, name="augment_flip"))
        elif isinstance(step, RandomShift):
            built.append(
                layers.RandomTranslation(
                    _shift_pixels(step.max_shift, height) / height,
                    _shift_pixels(step.max_shift, width) / width,
                    fill_mode="reflect",
                    interpolation="nearest",
                    seed=seed + i,
                    name="augment_shift",
                )
            )
        else:
            raise ValueError(
                "augment_in_graph=True runs only RandomFlip(probability=0.5) and RandomShift "
                f"(the names 'flip' and 'shift') in the training graph; got {step!r}. Use "
                "augment_in_graph=False for the other augmentations."
            )
    return built


def with_graph_augmentation(estimator, network: keras.Model) -> keras.Model:
    """``network`` with the estimator's augmentation layers in front, if it asks for them.

    The network becomes one nested layer of the returned model (named like it), after the
    augmentation layers; its own layers are reached with
    ``model.get_layer(network.name).get_layer(...)``.
    """
    if not estimator.augment_in_graph:
        return network
    steps = estimator._augmentations()
    if not steps:
        return network
    inputs = keras.Input(network.input_shape[1:], name="images")
    x = inputs
    for layer in augmentation_layers(steps, network.input_shape[1:], seed=estimator._training_seed):
        x = layer(x)
    return keras.Model(inputs, network(x), name=f"augmented_{network.name}")


def numpy_augmentation(estimator) -> list[PerturbationTransformer]:
    """The steps numpy applies to each batch: none when the graph augments."""
    return [] if estimator.augment_in_graph else estimator._augmentations()
