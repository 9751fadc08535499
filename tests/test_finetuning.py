"""Fine-tuning a fitted model on new data through ``init`` (sklcifar.finetuning)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from sklcifar import ConvNetClassifier
from sklcifar.datasets import stratified_subset
from sklcifar.persistence import final_classifier
from sklcifar.transformers import Grayscale, PixelNoise


class _StartingWeights(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = self.model.get_weights()


@pytest.fixture(scope="module")
def noisy(cifar10_train):
    """200 other real train images, grey, with the seed's 3% pixel noise (as the seed
    retrained on); a plain array, one noise draw."""
    X, y = stratified_subset(cifar10_train.images, cifar10_train.target, 200, random_state=1)
    return np.asarray(PixelNoise(random_state=0).fit_transform(Grayscale().fit_transform(X))), y


@pytest.mark.parametrize("how", ["fitted pipeline", "saved file"])
def test_fine_tuning_trains_a_copy_of_the_fitted_network(
    tiny_pipeline, tiny_model_path, noisy, how
):
    source = final_classifier(tiny_pipeline)
    before = source.model_.get_weights()
    start = _StartingWeights()
    init = tiny_pipeline if how == "fitted pipeline" else str(tiny_model_path)
    tuned = clone(tiny_pipeline).set_params(
        classifier__init=init, classifier__epochs=1, classifier__callbacks=[start]
    )
    tuned.fit(*noisy)
    for started, saved in zip(start.weights, before, strict=True):
        np.testing.assert_array_equal(started, saved)
    # The source model is untouched; the copy trained.
    for now, saved in zip(source.model_.get_weights(), before, strict=True):
        np.testing.assert_array_equal(now, saved)
    trained = tuned[-1].model_.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(trained, before, strict=True))
    assert len(tuned[-1].history_["loss"]) == 1


def test_fine_tuning_refuses_other_classes(tiny_pipeline, noisy):
    X, y = noisy
    keep = y < 5
    tuned = clone(tiny_pipeline).set_params(classifier__init=tiny_pipeline, classifier__epochs=1)
    with pytest.raises(ValueError, match=r"missing: \[5, 6, 7, 8, 9\]"):
        tuned.fit(X[keep], y[keep])


def test_fine_tuning_refuses_another_image_shape(tiny_pipeline, noisy):
    X, y = noisy
    tuned = clone(tiny_pipeline).set_params(classifier__init=tiny_pipeline, classifier__epochs=1)
    with pytest.raises(ValueError, match=r"images of shape \(32, 32, 1\).*\(16, 16, 1\)"):
        tuned.fit(X[:, ::2, ::2], y)


def test_an_init_unfitted_by_clone_gets_a_clear_error(tiny_pipeline, noisy):
    clf = clone(ConvNetClassifier(init=final_classifier(tiny_pipeline), epochs=1))
    with pytest.raises(NotFittedError, match="pass the path of the saved model"):
        clf.fit(*noisy)


def test_an_init_of_another_kind_is_refused(noisy):
    with pytest.raises(TypeError, match="init must be a fitted sklcifar classifier"):
        ConvNetClassifier(init=42, epochs=1).fit(*noisy)


def _layer_policies(network) -> list[str]:
    """The dtype policies of the layers that compute (an input layer computes nothing)."""
    return [
        layer.dtype_policy.name
        for layer in network.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]


def test_fine_tuning_trains_in_its_own_precision(tiny_pipeline, noisy):
    source = final_classifier(tiny_pipeline)  # bf16 on CPUs with native bf16, else float32
    policies = _layer_policies(source.model_)
    for precision in ("float32", "bfloat16"):
        tuned = clone(tiny_pipeline).set_params(
            classifier__init=tiny_pipeline, classifier__epochs=1, classifier__precision=precision
        )
        network = tuned.fit(*noisy)[-1].model_
        built = _layer_policies(network)
        if precision == "float32":
            assert set(built) == {"float32"}
        else:  # layers the architecture pinned to float32 (the softmax) stay float32
            expected = ["mixed_bfloat16" if p == source.dtype_policy_ else p for p in policies]
            assert built == expected
