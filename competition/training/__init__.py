"""Training: one model into its run folder (trainer.py), several side by side (parallel.py) or on a Ray
cluster (cluster/), the machine's precision and threads (hardware.py), speed and FLOPs (speed.py),
`make best`'s plan (planning.py) and its run (recipes.py), pseudo-labels (pseudo.py), the
hyperparameter search (tuning.py; its chief and workers: cluster/search.py)."""
