"""The training recipe's parts: loss, schedule, optimisers, precision, augmented batches."""

import keras
import numpy as np
import pytest

from sklcifar import training
from sklcifar.transformers import PixelNoise


def test_sparse_crossentropy_matches_keras_losses():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=8).astype("float32")
    labels = rng.integers(0, 5, size=8)
    sparse = keras.losses.SparseCategoricalCrossentropy()(labels, probs)
    np.testing.assert_allclose(training.SparseCrossentropy(0.0)(labels, probs), sparse, rtol=1e-5)
    smoothed = keras.losses.CategoricalCrossentropy(label_smoothing=0.2)(np.eye(5)[labels], probs)
    np.testing.assert_allclose(training.SparseCrossentropy(0.2)(labels, probs), smoothed, rtol=1e-5)


def test_warmup_linear_decay_shape():
    schedule = training.WarmupLinearDecay(0.4, warmup_steps=10, total_steps=110)
    values = [float(schedule(step)) for step in (0, 10, 60, 110, 200)]
    np.testing.assert_allclose(values, [0.04, 0.4, 0.2, 0.0, 0.0], atol=1e-6)
    clone = training.WarmupLinearDecay(**schedule.get_config())
    assert float(clone(5)) == pytest.approx(float(schedule(5)))


@pytest.mark.parametrize("name", training.OPTIMIZERS)
def test_make_optimizer(name):
    optimizer = training.make_optimizer(name, 0.1, weight_decay=1e-4)
    assert optimizer.weight_decay == pytest.approx(1e-4)
    if name == "nesterov":
        assert optimizer.nesterov


def test_make_optimizer_rejects_unknown_name():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        training.make_optimizer("rmsprop", 0.1)


def test_precision_policies(monkeypatch):
    monkeypatch.delenv("SKLCIFAR_PRECISION", raising=False)  # the CPU decides "auto" here
    assert training.dtype_policy_name("float32") == "float32"
    assert training.dtype_policy_name("bfloat16") == "mixed_bfloat16"
    monkeypatch.setattr(training, "cpu_prefers_bf16", lambda: False)
    assert training.dtype_policy_name("auto") == "float32"
    monkeypatch.setattr(training, "cpu_prefers_bf16", lambda: True)
    assert training.dtype_policy_name("auto") == "mixed_bfloat16"
    with pytest.raises(ValueError, match="precision"):
        training.dtype_policy_name("float16")


def test_precision_environment_variable_decides_auto(monkeypatch):
    monkeypatch.setattr(training, "cpu_prefers_bf16", lambda: True)
    monkeypatch.setenv("SKLCIFAR_PRECISION", "float32")
    assert training.dtype_policy_name("auto") == "float32"
    assert training.dtype_policy_name("bfloat16") == "mixed_bfloat16"  # explicit wins
    monkeypatch.setattr(training, "cpu_prefers_bf16", lambda: False)
    monkeypatch.setenv("SKLCIFAR_PRECISION", "bfloat16")
    assert training.dtype_policy_name("auto") == "mixed_bfloat16"
    monkeypatch.setenv("SKLCIFAR_PRECISION", "")
    assert training.dtype_policy_name("auto") == "float32"
    monkeypatch.setenv("SKLCIFAR_PRECISION", "fp16")
    with pytest.raises(ValueError, match="SKLCIFAR_PRECISION must be 'float32' or 'bfloat16'"):
        training.dtype_policy_name("auto")


def test_dtype_policy_context_restores_the_global_policy():
    before = keras.config.dtype_policy().name
    with training.dtype_policy("mixed_bfloat16"):
        layer = keras.layers.Dense(2)
    assert layer.dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == before


def test_augmented_batches_are_fresh_each_epoch_and_reproducible():
    X = np.random.default_rng(0).random((10, 8, 8, 1)).astype("float32")
    y = np.arange(10)

    def batches(seed):
        data = training.AugmentedBatches(
            X, y, batch_size=4, augment=[PixelNoise(0.5)], seed=seed, workers=1
        )
        first = [data[i] for i in range(len(data))]
        data.on_epoch_end()
        return first, [data[i] for i in range(len(data))]

    epoch1, epoch2 = batches(0)
    again1, _ = batches(0)
    assert len(epoch1) == 3 and sorted(np.concatenate([b[1] for b in epoch1])) == list(range(10))
    for a, b in zip(epoch1, again1, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(epoch1[0][0], epoch2[0][0])


def test_make_optimizer_keeps_a_moving_average_of_the_weights_on_request():
    assert not training.make_optimizer("nesterov", 0.1).use_ema
    optimizer = training.make_optimizer("nesterov", 0.1, ema_momentum=0.9)
    assert optimizer.use_ema and optimizer.ema_momentum == pytest.approx(0.9)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    X = np.random.default_rng(0).random((32, 2)).astype("float32")
    model.fit(X, X.sum(axis=1), batch_size=4, epochs=2, verbose=0)
    # fit ends by writing the averaged weights into the model.
    averaged = optimizer._model_variables_moving_average
    for weight, average in zip(model.trainable_weights, averaged, strict=True):
        np.testing.assert_allclose(weight.numpy(), average.numpy())


def test_numpy_blas_runs_one_thread_while_a_fit_trains():
    import threadpoolctl

    from sklcifar import FastNetClassifier

    def blas_threads():
        return {
            info["num_threads"]
            for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas"
        }

    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: seen.append(blas_threads()))
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (32, 8, 8), dtype=np.uint8), np.arange(32) % 2
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        FastNetClassifier(width=2, epochs=1, callbacks=[record], random_state=0).fit(X, y)
        assert seen == [{1}]
        assert blas_threads() == {2}  # restored after the fit


def _jensen_shannon(views):
    mixture = np.mean(views, axis=0)
    return np.mean([np.sum(p * np.log(p / mixture), axis=-1) for p in views], axis=0)


def test_consistency_crossentropy_is_clean_crossentropy_plus_weighted_jensen_shannon():
    rng = np.random.default_rng(0)
    views = rng.dirichlet(np.ones(5), size=(3, 8)).astype("float32")
    labels = rng.integers(0, 5, size=8)
    column = np.tile(labels, 3)[:, None]
    clean = training.SparseCrossentropy(0.1)(labels, views[0])
    loss = training.ConsistencyCrossentropy(12.0, label_smoothing=0.1)
    expected = float(clean) + 12 * _jensen_shannon(views).mean()
    np.testing.assert_allclose(loss(column, views.reshape(24, 5)), expected, rtol=1e-5)
    # Three equal views agree: only the clean cross-entropy remains.
    same = np.concatenate([views[0]] * 3)
    np.testing.assert_allclose(loss(column, same), clean, rtol=1e-5)
    # Validation batches (labels of shape (batch,)) get the plain cross-entropy.
    np.testing.assert_allclose(loss(labels, views[0]), clean, rtol=1e-5)
    # Sample weights weight each image once, whichever view row carries them.
    weights = rng.random(8).astype("float32")
    weighted = loss(column, views.reshape(24, 5), sample_weight=np.tile(weights, 3))
    per_image = training.SparseCrossentropy(0.1).call(labels, views[0]).numpy()
    per_image = per_image + 12 * _jensen_shannon(views)
    np.testing.assert_allclose(weighted, np.mean(weights * per_image), rtol=1e-5)
    assert training.ConsistencyCrossentropy(**loss.get_config()).weight == 12.0


def test_augmented_batches_with_consistency_views():
    X = np.random.default_rng(0).random((10, 8, 8, 1)).astype("float32")
    y, weights = np.arange(10), np.linspace(0.1, 1, 10)
    data = training.AugmentedBatches(
        X,
        y,
        batch_size=4,
        augment=[_AlwaysFlip(), PixelNoise(0.5)],
        seed=0,
        sample_weight=weights,
        consistency_from=1,
        workers=1,
    )
    images, labels, batch_weights = data[0]
    rows = np.sort(data._order[:4])
    assert images.shape == (12, 8, 8, 1) and labels.shape == (12, 1)
    np.testing.assert_array_equal(labels[:, 0], np.tile(y[rows], 3))
    np.testing.assert_array_equal(batch_weights, np.tile(weights[rows], 3))
    # The clean view has the steps before consistency_from; the two others each their own
    # draw of the rest, on top of the clean view.
    clean, first, second = np.split(images, 3)
    np.testing.assert_array_equal(clean, X[rows][:, :, ::-1])
    assert not np.array_equal(first, second)
    for view in (first, second):
        changed = view != clean
        assert 0.3 < changed.mean() < 0.7  # half the pixels replaced, the rest the clean view's


class _AlwaysFlip:
    def perturb(self, batch, random_state):
        return batch[:, :, ::-1]


class _Scheduled:
    """A step whose strength follows the schedule: records the progress it gets."""

    follows_training_schedule = True

    def __init__(self):
        self.seen = []

    def perturb(self, batch, random_state, progress=None):
        self.seen.append(progress)
        return batch


def test_augmented_batches_pass_progress_to_scheduled_steps_only():
    X = np.zeros((10, 8, 8, 1), "float32")
    y = np.arange(10) % 2
    plan, scheduled = [None], _Scheduled()
    # _AlwaysFlip takes no progress (steps written before it existed still work).
    data = training.AugmentedBatches(
        X, y, batch_size=4, augment=[_AlwaysFlip(), scheduled], seed=0,
        planned_steps=lambda: plan[0],
    )  # fmt: skip
    data[1]  # no plan yet: the start of the schedule
    plan[0] = 12
    data[2]
    data.on_epoch_end()
    data[1]
    assert scheduled.seen == [0.0, 2 / 12, 4 / 12]
    plan[0] = 3
    data[2]
    assert scheduled.seen[-1] == 1.0  # past a shortened plan: its end
    unplanned = _Scheduled()
    training.AugmentedBatches(X, y, batch_size=4, augment=[unplanned], seed=0)[0]
    assert unplanned.seen == [None]
