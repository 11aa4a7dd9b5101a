"""nascore-steerage: the STEERAGE synthesis methodology (Hassantabar, Dai and Jha) for nascore.

Registers the ``ffnn``, ``lenet5`` and ``resnet`` search spaces, the ``boosted-trees``
predictor, the ``sobol`` and ``iterative-selection`` samplers, the ``ees`` optimizer, the
``scann``, ``nest`` and ``quantize`` compressors, the ``cv-train`` evaluator and the
``nascore steerage`` commands.
"""

import nascore

_P = "nascore_steerage."


@nascore.hookimpl
def register_search_spaces(register):
    register("ffnn", nascore.lazy(_P + "spaces:FFNNSpace"),
             "STEERAGE FFNN space (Table 2): hidden layers, neurons, 11 DR methods and ratio, quantization")
    register("lenet5", nascore.lazy(_P + "spaces:LeNet5Space"),
             "STEERAGE LeNet-5 space (Table 6): image filter and size, filters, kernel, pooling, FC, bits")
    register("resnet", nascore.lazy(_P + "spaces:ResNetSpace"),
             "STEERAGE ResNet space (Table 8): image DR, blocks and filters per stage, pooling, FC, bits")


@nascore.hookimpl
def register_predictors(register):
    register("boosted-trees", nascore.lazy(_P + "predictor:BoostedTreesPredictor"),
             "AdaBoost.R2 boosted decision trees (max depth 5, up to 500 estimators): STEERAGE's accuracy predictor")


@nascore.hookimpl
def register_samplers(register):
    register("sobol", nascore.lazy(_P + "sampling:SobolSampler"),
             "scrambled Sobol (quasi Monte-Carlo) pool over the space's unit cube")
    register("iterative-selection", nascore.lazy(_P + "sampling:IterativeSampleSelection"),
             "STEERAGE Algorithm 1: Sobol pool, random batch, then the top-predicted candidates each iteration")


@nascore.hookimpl
def register_optimizers(register):
    register("ees", nascore.lazy(_P + "ees:EfficientEvolutionarySearch"),
             "STEERAGE Algorithm 2: evolutionary search on predicted accuracy, best architecture trained")


@nascore.hookimpl
def register_compressors(register):
    register("scann", nascore.lazy(_P + "scann:SCANN"),
             "SCANN grow-and-prune of the feed-forward classifier (Schemes A, B, C)")
    register("nest", nascore.lazy(_P + "nest:NeST"),
             "NeST for convolutions: loss-guided feature-map growth, partial-area convolution, pruning")
    register("quantize", nascore.lazy(_P + "quantize:Quantize"),
             "post-training weight quantization to 4/8/16/32 bits")


@nascore.hookimpl
def register_evaluators(register):
    register("cv-train", nascore.lazy(_P + "robust:CrossValidatedEvaluator"),
             "the train evaluator plus cv_accuracy: pooled k-fold accuracy on train + valid (default for tabular data)")


@nascore.hookimpl
def register_commands(cli):
    from .cli import steerage

    cli.add_command(steerage)
