"""The models: every design (designs.py), the tuner's search space over the report's CNN
(search_space.py), the augmentation pipeline that feeds them (augment.py)."""
