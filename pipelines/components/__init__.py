"""Pipeline components: ExampleGen, StatisticsGen, Trainer, Evaluator, Pusher, BulkInferrer.

Each module has a `Config` dataclass and `run(config, inputs..., output_dir, ...)`,
which writes into `output_dir` and returns the artifact's properties.
"""
