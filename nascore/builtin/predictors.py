"""Built-in predictors (a default plugin).  scikit-learn is imported when they are built."""

from ..hookspecs import hookimpl
from ..params import lazy


@hookimpl
def register_predictors(register):
    register("random-forest", lazy("nascore.predictors:RandomForestPredictor"), "random forest regression")
    register("gaussian-process", lazy("nascore.predictors:GaussianProcessPredictor"), "Gaussian-process regression (Matern)")
    register("gradient-boosting", lazy("nascore.predictors:GradientBoostingPredictor"), "gradient-boosted trees")
