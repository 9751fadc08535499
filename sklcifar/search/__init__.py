"""Hyper-parameter search over sklcifar classifiers with Optuna.

One module per job: ``space`` (the search-space language and the built-in spaces),
``fidelity`` (pruners and the schedule of epochs and training images a trial gets),
``trial`` (one trial in a training process of its own), ``storage`` (opening Optuna
storages), ``study`` (the study loop and its budget) and ``report`` (best parameters,
refit, files). This package re-exports their public names.

``run_search(X, y, ...)`` tunes classifier families on training images. Each trial
suggests the estimator's own parameters from ``SEARCH_SPACES`` (so ``best_params`` go
straight into ``set_params``) and fits the grayscale pipeline in a process of its own
(TensorFlow never frees a network it trained, so memory stays flat only this way). The
estimator holds out a stratified validation split (``StratifiedShuffleSplit``, its
``validation_fraction``); the validation accuracy is reported after every epoch, and the
trial is pruned when the pruner (Hyperband by default: successive halving on epochs, the
training images growing at the same rungs: ``fidelity``) judges it hopeless. Trials
maximise clean validation accuracy, accuracy under the seed's pixel noise, or their mean
(``objective``). The space is data (``BUILTIN_SPACE``, or a
TOML/JSON file or Python function read by ``load_space``).

Studies live in an Optuna RDB storage (``open_storage``): an SQLite file on one machine,
or PostgreSQL (or MySQL) when workers on several machines share one study by name.
Rerunning a search resumes its study. Workers record a heartbeat; once the heartbeat of
a trial whose worker died (killed, out of memory) is stale, the trial is marked failed
and queued again with the same parameters, as is a trial whose training process was
killed (the out-of-memory killer's choice). Together the workers finish ``n_trials``
trials (complete or pruned), and each waits for the others' last trials, so the study
ends complete even when a worker dies near the end.

``refit_trial`` picks the configuration to refit (the default unless a trial beat it by
more than a standard error), ``duel`` checks a challenger against the default on the
whole training split, ``refit_best`` refits the pipeline on the images it is given (the
whole training split, for an epoch count or a time budget), and
``write_search_report`` writes the best parameters (JSON), every trial (CSV) and Optuna's
plots (PNG). ``sklcifar search`` (``sklcifar.search.command``) is the command line
over these functions; ``benchmarks/search.py`` wraps it with the benchmark comparisons.

Examples
--------
>>> from sklcifar.search import describe_space
>>> print(describe_space().splitlines()[2])
  depth              int 3..5
"""

from .fidelity import FIDELITIES, PRUNERS, data_schedule, describe_fidelity, make_pruner
from .report import (
    best_estimator_params,
    clean_and_noisy_accuracy,
    default_complete_trial,
    duel,
    estimated_refit_epochs,
    refit_best,
    refit_trial,
    standard_error,
    write_search_report,
)
from .space import (
    BUILTIN_SPACE,
    CONVNET_SPACE,
    SEARCH_SPACES,
    Param,
    SpaceError,
    default_trial,
    describe_space,
    load_space,
    parse_space,
    suggest_params,
)
from .storage import MAX_RETRY, check_storage_url, open_storage
from .study import run_search
from .trial import (
    OBJECTIVES,
    KerasPruningCallback,
    NoisyValidation,
    TrainingProcessDied,
    build_pipeline,
    objective,
)

__all__ = [
    "BUILTIN_SPACE",
    "CONVNET_SPACE",
    "FIDELITIES",
    "MAX_RETRY",
    "OBJECTIVES",
    "PRUNERS",
    "SEARCH_SPACES",
    "KerasPruningCallback",
    "NoisyValidation",
    "Param",
    "SpaceError",
    "TrainingProcessDied",
    "best_estimator_params",
    "build_pipeline",
    "check_storage_url",
    "clean_and_noisy_accuracy",
    "data_schedule",
    "default_complete_trial",
    "default_trial",
    "describe_fidelity",
    "describe_space",
    "duel",
    "estimated_refit_epochs",
    "load_space",
    "make_pruner",
    "objective",
    "open_storage",
    "parse_space",
    "refit_best",
    "refit_trial",
    "run_search",
    "standard_error",
    "suggest_params",
    "write_search_report",
]
