"""nascore-ngram-srm: N-gram features of chain networks and sequential regression
models (SRMs) for performance prediction (``../shared/papers/ngram-srm.md``).

Only hook implementations live here; each component is in its own module and is
imported when it is built (``nascore.lazy``), so loading the plugin costs nothing.
"""

from nascore import hookimpl, lazy

_MOD = "nascore_ngram_srm"


@hookimpl
def register_search_spaces(register):
    register("metaqnn", lazy(f"{_MOD}.metaqnn:MetaQNNSpace"),
             description="MetaQNN chain CNNs: conv/pool/FC/GAP layers with MetaQNN's validity rules")
    register("resnet-chain", lazy(f"{_MOD}.resnet_chain:ResNetChainSpace"),
             description="residual chains: 2-18 blocks of three k x k convolutions + BN + sum")


@hookimpl
def register_encoders(register):
    register("ngram", lazy(f"{_MOD}.encoder:NGramEncoder"),
             description="N-gram features of a space's token sequence (sparse, binary or counts)")


@hookimpl
def register_predictors(register):
    register("srm", lazy(f"{_MOD}.srm:SequentialRegressionModels"),
             description="sequential regression models on learning-curve prefixes (nu-SVR, RF, OLS, BLR)")


@hookimpl
def register_stoppers(register):
    register("srm-stop", lazy(f"{_MOD}.stopper:SRMEarlyStopping"),
             description="stop training when the SRM predicts the candidate will not beat the best")


@hookimpl
def register_optimizers(register):
    register("predictor-screening", lazy(f"{_MOD}.optimizer:PredictorScreening"),
             description="random search whose candidates are ranked by the run's encoder + predictor")


@hookimpl
def register_commands(cli):
    from .cli import ngram

    cli.add_command(ngram)
