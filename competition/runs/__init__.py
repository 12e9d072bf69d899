"""Run folders and what is made of several: folders, locks and which run a command takes
(folders.py), cross-validation folds (folds.py), recipes' plans (recipes.py)."""
