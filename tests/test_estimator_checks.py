"""scikit-learn's estimator checks on every public sklcifar estimator, shaped for images.

sklcifar's estimators take images (n, height, width[, channels]) and say so in their tags
(``three_d_array=True, two_d_array=False``), so scikit-learn's ``parametrize_with_checks``
runs only the checks that feed no data. The checks that feed 2-D tabular data are
rewritten here with images, one test per check, on every classifier family (tiny widths,
one epoch: the whole module trains a few dozen tiny networks).
"""

from __future__ import annotations

import inspect
import re
import warnings

import joblib
import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError, SkipTestWarning
from sklearn.utils import estimator_checks
from sklearn.utils._testing import create_memmap_backed_data
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklcifar import ConvNetClassifier, FastNetClassifier, ResNetClassifier, transformers

CLASSIFIERS = {
    "convnet": ConvNetClassifier(
        depth=2, filters=4, dense=(8,), epochs=1, batch_size=16, random_state=0
    ),
    "fastnet": FastNetClassifier(width=2, epochs=1, batch_size=16, random_state=0),
    "resnet": ResNetClassifier(depth=8, width=2, epochs=1, batch_size=16, random_state=0),
}
TRANSFORMERS = [
    getattr(transformers, name)()
    for name in transformers.__all__
    if name != "PerturbationTransformer"
]

# scikeras 0.13 predates scikit-learn 1.6's tag API; ImageClassifier works around both.
SCIKERAS_FAILURES = {
    "check_mixin_order": "scikeras 0.13 lists ClassifierMixin after BaseEstimator; "
    "ImageClassifier sets the classifier tags in __sklearn_tags__ instead",
    "check_estimator_tags_renamed": "scikeras 0.13 still defines the pre-1.6 _more_tags; "
    "ImageClassifier.__sklearn_tags__ supersedes it",
    "check_do_not_raise_errors_in_init_or_set_params": "the check also passes a keyword "
    "named 'kwargs' (the signature's **kwargs), which ImageClassifier refuses as unknown, "
    "as any Python function would; test_init_and_set_params_do_not_validate runs the check "
    "without it",
}


def expected_failures(estimator) -> dict[str, str]:
    return SCIKERAS_FAILURES if estimator in CLASSIFIERS.values() else {}


# With image input tags, scikit-learn skips its data checks with a SkipTestWarning: the
# image-shaped versions below replace them.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", SkipTestWarning)
    SKLEARN_CHECKS = parametrize_with_checks(
        [*CLASSIFIERS.values(), *TRANSFORMERS], expected_failed_checks=expected_failures
    )


@SKLEARN_CHECKS
def test_sklearn_checks(estimator, check):
    check(estimator)


def test_input_tags_say_images():
    for estimator in [*CLASSIFIERS.values(), *TRANSFORMERS]:
        tags = estimator.__sklearn_tags__().input_tags
        assert (tags.two_d_array, tags.three_d_array, tags.sparse) == (False, True, False)


# The checks of scikit-learn's API group that feed no data, run by name on the classifiers
# (test_transformers.py runs them on the transformers).
DATA_FREE_CHECKS = [
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
]


@pytest.mark.parametrize("family", sorted(CLASSIFIERS))
@pytest.mark.parametrize("check", DATA_FREE_CHECKS)
def test_sklearn_data_free_checks(family, check, request):
    if check in SCIKERAS_FAILURES:
        request.applymarker(pytest.mark.xfail(strict=True, reason=SCIKERAS_FAILURES[check]))
    estimator = clone(CLASSIFIERS[family])
    getattr(estimator_checks, check)(type(estimator).__name__, estimator)


@pytest.mark.parametrize("family", sorted(CLASSIFIERS))
def test_init_and_set_params_do_not_validate(family):
    # check_do_not_raise_errors_in_init_or_set_params over the declared parameters: odd
    # values are stored as given and checked in fit.
    cls = type(CLASSIFIERS[family])
    names = [
        name
        for name, parameter in inspect.signature(cls).parameters.items()
        if parameter.kind is not parameter.VAR_KEYWORD
    ]
    for value in (-1, 3.0, "helloworld", np.array([1.0, 4.0]), [1], {}, []):
        params = dict.fromkeys(names, value)
        cls(**params).set_params(**params)


def test_unknown_keyword_fails_at_construction():
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['depht'\]"):
        ConvNetClassifier(depht=3)
    assert ConvNetClassifier(optimizer__nesterov=True).get_params()["optimizer__nesterov"]


# ------------------------------------------------------------ image-shaped versions
def images(n_per_class=10, seed=0):
    """Grey 8x8 uint8 images of two classes."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(2 * n_per_class, 8, 8), dtype=np.uint8)
    return X, np.repeat([0, 1], n_per_class)


FAMILIES = pytest.mark.parametrize("family", sorted(CLASSIFIERS))


@FAMILIES
def test_fit_and_predict_follow_the_checks(family):
    """Two fits per family cover the checks that need a fitted estimator."""
    X, y = create_memmap_backed_data(images())  # check_readonly_memmap_input
    X_test, y_test = images(seed=1)
    weights = np.linspace(0.5, 2, len(y))
    kept = weights.copy()
    estimator = clone(CLASSIFIERS[family])
    params = joblib.hash(estimator.get_params())
    public_before = {name for name in vars(estimator) if not name.startswith("_")}

    # check_estimators_fit_returns_self, check_sample_weights_list
    assert estimator.fit(X, y, sample_weight=list(weights)) is estimator
    # check_estimators_overwrite_params and check_dont_overwrite_parameters
    assert joblib.hash(estimator.get_params()) == params
    added = {name for name in vars(estimator) if not name.startswith("_")} - public_before
    assert added and all(name.endswith("_") for name in added), added

    # check_dict_unchanged
    before = dict(vars(estimator))
    first = estimator.predict_proba(X_test)
    estimator.predict(X_test)
    estimator.score(X_test, y_test)
    assert vars(estimator).keys() == before.keys()
    assert all(vars(estimator)[name] is value for name, value in before.items())

    # check_n_features_in_after_fitting: the image shape plays n_features_in_'s part
    with pytest.raises(ValueError, match=r"fitted on images of shape \(8, 8, 1\)"):
        estimator.predict(np.zeros((2, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="holds 0 images"):
        estimator.predict(np.zeros((0, 8, 8), np.uint8))

    # check_fit_idempotent, check_sample_weights_not_overwritten
    second = estimator.fit(X, y, sample_weight=weights).predict_proba(X_test)
    np.testing.assert_array_equal(weights, kept)
    # Equal seeds, equal networks: only multi-threaded float sums may differ (the
    # non_deterministic tag), far below this tolerance.
    np.testing.assert_allclose(first, second, atol=1e-3)


@FAMILIES
def test_bad_sample_weights(family):
    # check_sample_weights_shape, check_all_zero_sample_weights_error, negative weights
    X, y = images()
    weights = np.linspace(0.5, 2, len(y))
    bad = {
        "sample_weight.shape == (19,), expected (20,)": weights[:-1],
        "must be 1D array or scalar, got 2D array": weights[:, None],
        "Negative values in data passed to `sample_weight`": -weights,
        "at least one non-zero number": np.zeros(len(y)),
    }
    for message, sample_weight in bad.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            clone(CLASSIFIERS[family]).fit(X, y, sample_weight=sample_weight)


@FAMILIES
def test_not_fitted_errors(family):
    # check_estimators_unfitted
    X, y = images()
    estimator = clone(CLASSIFIERS[family])
    for method in (estimator.predict, estimator.predict_proba):
        with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
            method(X)
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        estimator.score(X, y)


X_GOOD, Y_GOOD = images()
BAD_FITS = {
    # check_estimators_empty_data_messages
    "no images": (X_GOOD[:0], Y_GOOD[:0], ValueError, "holds 0 images"),
    "empty images": (X_GOOD[:, :0], Y_GOOD, ValueError, "empty images"),
    # check_estimators_nan_inf
    "NaN": (np.where(X_GOOD > 250, np.nan, 0.5), Y_GOOD, ValueError, "NaN or infinite"),
    "inf": (np.where(X_GOOD > 250, np.inf, 0.5), Y_GOOD, ValueError, "NaN or infinite"),
    # check_dtype_object and check_complex_data
    "object dtype": (X_GOOD.astype(object), Y_GOOD, ValueError, "has dtype object"),
    "complex": (X_GOOD + 1j, Y_GOOD, ValueError, "has dtype complex128"),
    # check_estimator_sparse_array / _matrix: sparse is 2-D, so tabular by nature
    "sparse": (sparse.csr_matrix(X_GOOD.reshape(20, -1)), Y_GOOD, TypeError, "sparse matrix"),
    # check_fit2d_1sample, check_fit2d_predict1d: rank-2 X
    "2-D X": (X_GOOD.reshape(20, -1), Y_GOOD, ValueError, r"rank 2\); expected images"),
    # check_supervised_y_2d, check_requires_y_none
    "2-D y": (X_GOOD, Y_GOOD[:, None], ValueError, "y must be a 1-D array"),
    "no y": (X_GOOD, None, ValueError, "y must be a 1-D array"),
    # check_classifiers_one_label, check_classifiers_regression_target
    "one label": (X_GOOD, np.zeros(20), ValueError, "single class"),
    "continuous y": (X_GOOD, np.linspace(0, 1, 20), ValueError, "target type 'continuous'"),
}


@FAMILIES
@pytest.mark.parametrize("case", sorted(BAD_FITS))
def test_bad_fit_input_is_refused_before_training(family, case):
    X, y, error, message = BAD_FITS[case]
    with pytest.raises(error, match=message):
        clone(CLASSIFIERS[family]).fit(X, y)


# ---------------------------------------------------------------------- transformers
@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=lambda t: type(t).__name__)
def test_transformer_fit_and_transform_change_no_parameters(transformer):
    # check_estimators_overwrite_params, check_fit_idempotent, check_dict_unchanged
    X, _ = images()
    estimator = clone(transformer)
    params = joblib.hash(estimator.get_params())
    assert estimator.fit(X) is estimator
    first = estimator.transform(X)
    before = dict(vars(estimator))
    np.testing.assert_array_equal(estimator.fit(X).transform(X), first)
    estimator.transform(X)
    assert joblib.hash(estimator.get_params()) == params
    assert vars(estimator).keys() == before.keys()


def test_standardize_not_fitted():
    with pytest.raises(NotFittedError):
        transformers.Standardize().transform(images()[0])
