"""Work spread over machines: the models of a CV, an ensemble or a recipe as tasks on a Ray cluster
(connection.py reaches it, models.py trains on it), and keras-tuner's chief and workers for a search
(search.py)."""
