"""Built-in evaluators (a default plugin): ``train`` (train from scratch with the
Trainer) and ``tabular`` (look up a benchmark table such as NAS-Bench-201)."""

from ..hookspecs import hookimpl


@hookimpl
def register_evaluators(register):
    from ..evaluation import TabularEvaluator, TrainEvaluator

    register("train", TrainEvaluator)
    register("tabular", TabularEvaluator)
