"""Studies made of runs: tracking in MLflow, ablation designs and sweeps, statistics and
comparison, evaluation, Optuna tuning and the shared work queue."""
