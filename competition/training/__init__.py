"""Training: one model into its run folder (trainer.py), several side by side (parallel.py), the
machine's precision and threads (hardware.py), speed and FLOPs (speed.py), pseudo-labels
(pseudo.py), the hyperparameter search (tuning.py, tuning_cluster.py)."""
