# Each target calls a module; run `make` (or `make help`) for the list.
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(or $(DIGITS_DATA_DIR),data)
DEMO_DIR := data/demo
# Extra flags for the module a target runs, e.g. make train ARGS="--epochs 5 --seed 1"
ARGS ?=
RUN ?=
RUN_FLAG := $(if $(RUN),--run $(RUN))

.PHONY: help setup demo-data demo train train-aug submission bench test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	touch $@

setup: $(VENV)/.installed ## create .venv and install requirements.txt

demo-data: $(VENV)/.installed ## write the offline demo set (scikit-learn digits, Kaggle format) to data/demo
	$(PY) -m competition.demo_data --out $(DEMO_DIR)

demo: demo-data ## set up, train the augmented model on the demo set, write its submission.csv
	$(PY) -m competition.train --data_dir $(DEMO_DIR) --name demo --augment --epochs 20 --learning_rate 0.001 $(ARGS)
	$(PY) -m competition.submission --data_dir $(DEMO_DIR)

train: $(VENV)/.installed ## train the report's model 1 (no augmentation) on DATA_DIR (default data/)
	$(PY) -m competition.train --data_dir $(DATA_DIR) --name report-baseline $(ARGS)

train-aug: $(VENV)/.installed ## train the report's model 2 (rotation/shift/zoom augmentation)
	$(PY) -m competition.train --data_dir $(DATA_DIR) --name report-aug --augment $(ARGS)

submission: $(VENV)/.installed ## predict test.csv with RUN (default: newest run) into RUN/submission.csv
	$(PY) -m competition.submission --data_dir $(DATA_DIR) $(RUN_FLAG) $(ARGS)

bench: $(VENV)/.installed ## training images/s with and without augmentation (needs ../shared data)
	$(PY) scripts/bench_train.py $(ARGS)

test: $(VENV)/.installed ## run the test suite
	$(PY) -m pytest -q tests

clean: ## remove .venv (models/ and data/ are kept)
	rm -rf $(VENV)
