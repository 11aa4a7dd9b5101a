"""The public API for plugins: everything a plugin may import from the core.

Plugins import from here (and from ``nascore.nn`` for torch building blocks), never from
driver internals; an import-linter contract in ``make test`` holds this.  Names whose
modules import torch or scikit-learn are resolved lazily, so importing this module stays
cheap (``nascore --help`` and ``nascore plugins`` do not pay for torch).
"""

from __future__ import annotations

import importlib

from .arch import Architecture, Choice, Float, Int, SearchSpace
from .errors import (
    ConfigError,
    ContextReadOnlyError,
    DivergedError,
    InvalidGenomeError,
    NascoreError,
    RunStoreError,
    did_you_mean,
)
from .hookspecs import hookimpl
from .params import fit_time_validators, in_range, lazy, one_of, param, resolved_params, validate_params
from .results import FAILED, OK, STOPPED, Compressed, Evaluation, SearchResult

# name -> module that defines it; imported on first access
_LAZY = {
    "create": "nascore",
    "components": "nascore",
    "load_config": ("nascore.config", "load"),
    "load_task": "nascore.data",
    "Split": "nascore.data",
    "Task": "nascore.data",
    "build_seeded": "nascore.evaluation",
    "TrainEvaluator": "nascore.evaluation",
    "count_flops": "nascore.metrics",
    "count_params": "nascore.metrics",
    "kendall_tau": "nascore.metrics",
    "measure_latency_ms": "nascore.metrics",
    "read_config": "nascore.rundir",
    "read_evaluations": "nascore.rundir",
    "require_run_dir": "nascore.rundir",
    "write_report": "nascore.report",
    "Trainer": "nascore.training",
    "TrainEvaluator": "nascore.evaluation",
    "cutout": "nascore.training",
    "WeightSharingTrainer": "nascore.weight_sharing",
    "ArchStep": "nascore.weight_sharing",
    "resolve_device": "nascore.device",
    "model_device": "nascore.device",
    "check_device_name": "nascore.device",
    "evaluation_seed": "nascore.job",
    "Console": "nascore.console",
    "SearchContext": "nascore.context",
    "SamplerBase": "nascore.protocols",
    "StopperBase": "nascore.protocols",
    "EvaluatorBase": "nascore.protocols",
    "SearchSpaceProtocol": "nascore.protocols",
    "EncoderProtocol": "nascore.protocols",
    "PredictorProtocol": "nascore.protocols",
    "SamplerProtocol": "nascore.protocols",
    "OptimizerProtocol": "nascore.protocols",
    "CompressorProtocol": "nascore.protocols",
    "EvaluatorProtocol": "nascore.protocols",
    "ExecutorProtocol": "nascore.protocols",
    "StopperProtocol": "nascore.protocols",
    "DatasetProtocol": "nascore.protocols",
    "check_protocol": "nascore.protocols",
    "DartsSpace": "nascore.spaces.darts",
    "DARTS_CELLS": ("nascore.spaces.darts", "CELLS"),
    "darts_in_dim": ("nascore.spaces.darts", "in_dim"),
    "darts_op_dim": ("nascore.spaces.darts", "op_dim"),
    "add_run_figure": "nascore.rundir",
    "run_study": "nascore.study",
    "Study": "nascore.study",
    "Arm": "nascore.study",
    "summarize": "nascore.evidence",
    "paired": "nascore.evidence",
    "provenance": "nascore.evidence",
}


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'nascore.api' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


__all__ = [
    "Architecture", "Choice", "Float", "Int", "SearchSpace",
    "ConfigError", "ContextReadOnlyError", "DivergedError", "InvalidGenomeError", "NascoreError", "RunStoreError", "did_you_mean",
    "hookimpl", "fit_time_validators", "in_range", "lazy", "one_of", "param", "resolved_params", "validate_params",
    "FAILED", "OK", "STOPPED", "Compressed", "Evaluation", "SearchResult",
    *sorted(_LAZY),
]
