# Each target calls a module; run `make` (or `make help`) for the list.
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(or $(DIGITS_DATA_DIR),data)
MODELS_DIR ?= $(or $(DIGITS_MODELS_DIR),models)
DEMO_DIR := data/demo
# Extra flags for the module a target runs, e.g. make train ARGS="--epochs 5 --seed 1"
ARGS ?=
RUN ?=
RUN_FLAG := $(if $(RUN),--run $(RUN))
# Train the models of best, cv and ensemble on a Ray cluster: CLUSTER=local, auto or HOST:PORT (docs/cluster.md).
CLUSTER ?=
CLUSTER_FLAG := $(if $(CLUSTER),--cluster $(CLUSTER))

.PHONY: help setup demo-data demo train train-aug tune train-best submission bench bench-speed test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $@

setup: $(VENV)/.installed ## create .venv: requirements.txt's pins, and this project installed editable (pip install -e .)

# Kaggle (credentials: see README): make data [SOURCE=zip-or-folder], make submit [RUN=id] [MESSAGE="..."]
SOURCE ?=
MESSAGE ?=
.PHONY: data submit submissions

data: $(VENV)/.installed ## put the competition's CSVs in DATA_DIR, from Kaggle (or SOURCE=zip or folder)
	$(PY) -m competition.get_data --data_dir $(DATA_DIR) $(if $(SOURCE),--source "$(SOURCE)") $(ARGS)

submit: $(VENV)/.installed ## check RUN's submission.csv against test.csv, submit it to Kaggle, print the score
	$(PY) -m competition.submit --models_dir $(MODELS_DIR) --data_dir $(DATA_DIR) $(RUN_FLAG) $(if $(MESSAGE),--message "$$MESSAGE") $(ARGS)

submissions: $(VENV)/.installed ## list past Kaggle submissions and their public scores
	$(PY) -m competition.submit --list --models_dir $(MODELS_DIR) $(ARGS)

demo-data: $(VENV)/.installed ## write the offline demo set (scikit-learn digits, Kaggle format) to data/demo
	$(PY) -m competition.demo_data --out $(DEMO_DIR)

demo: demo-data ## set up, train the demo preset (the augmented model, a faster schedule) on the demo set, write its submission.csv
	$(PY) -m competition.train --models_dir $(MODELS_DIR) --data_dir $(DEMO_DIR) --preset demo --name demo $(ARGS)
	$(PY) -m competition.predict --models_dir $(MODELS_DIR) --data_dir $(DEMO_DIR) --name demo

train: $(VENV)/.installed ## train the report's model 1 (no augmentation) on DATA_DIR (default data/)
	$(PY) -m competition.train --models_dir $(MODELS_DIR) --data_dir $(DATA_DIR) --name report-baseline $(ARGS)

train-aug: $(VENV)/.installed ## train the report's model 2 (rotation/shift/zoom augmentation)
	$(PY) -m competition.train --models_dir $(MODELS_DIR) --data_dir $(DATA_DIR) --preset report-aug --name report-aug $(ARGS)

# Tuning: make tune [WORKERS=N] [ARGS="--fresh" or budget flags]; SEARCH picks the search folder.
WORKERS ?= 0
SEARCH ?= hyperband

tune: $(VENV)/.installed ## search the report's hyperparameter space (Hyperband, resumable; WORKERS=N for a local cluster)
	$(PY) -m competition.tune --models_dir $(MODELS_DIR) --data_dir $(DATA_DIR) --workers $(WORKERS) $(ARGS)

train-best: $(VENV)/.installed ## retrain the search's best hyperparameters (augmented) into MODELS_DIR/<time>-tuned
	$(PY) -m competition.train --data_dir $(DATA_DIR) --name tuned --augment --models_dir $(MODELS_DIR) --hparams $(MODELS_DIR)/search-$(SEARCH)/best_hyperparameters.json $(ARGS)

# One command from the data to a checked submission: make best [RECIPE=fast] [ARGS="--budget_minutes 60"];
# python -m competition.best --list names the recipes.
RECIPE ?= fast
.PHONY: best

best: $(VENV)/.installed ## train RECIPE (report, fast, best-single, best-ensemble) into models/recipe-RECIPE/ with its checked submission.csv [CLUSTER=...]
	$(PY) -m competition.best --models_dir $(MODELS_DIR) --recipe $(RECIPE) --data_dir $(DATA_DIR) $(CLUSTER_FLAG) $(ARGS)

# The same recipe on Kaggle's GPU: make kaggle-best [RECIPE=fast] [ARGS="--force"]; docs/kaggle.md.
.PHONY: kaggle-best
kaggle-best: $(VENV)/.installed ## train RECIPE in a private Kaggle kernel on its GPU, fetch it into models/recipe-RECIPE-kaggle/
	$(PY) -m competition.kaggle_best --models_dir $(MODELS_DIR) --recipe $(RECIPE) $(ARGS)

# Beyond the report: make cv K=5 ARGS="--preset strong", make ensemble K=5 ARGS="--preset strong".
K ?= 5
.PHONY: cv ensemble combine

cv: $(VENV)/.installed ## K-fold cross-validation of a configuration: per-fold accuracy, mean and spread
	$(PY) -m competition.cv --models_dir $(MODELS_DIR) --data_dir $(DATA_DIR) --k $(K) $(CLUSTER_FLAG) $(ARGS)

ensemble: $(VENV)/.installed ## train K members (seeds), average their probabilities; reuses members that exist
	$(PY) -m competition.ensemble --models_dir $(MODELS_DIR) --data_dir $(DATA_DIR) --k $(K) $(CLUSTER_FLAG) $(ARGS)

combine: $(VENV)/.installed ## CVS="cv-a cv-b" NAME=n: CVs of the same folds as one ensemble, scored per fold -> models/cv-NAME
	$(PY) -m competition.combine --models_dir $(MODELS_DIR) --data_dir $(DATA_DIR) $(CVS) --name $(NAME) $(ARGS)

submission: $(VENV)/.installed ## predict test.csv with RUN (default: the run or ensemble with the best recorded score) into RUN/submission.csv
	$(PY) -m competition.predict --models_dir $(MODELS_DIR) --data_dir $(DATA_DIR) $(RUN_FLAG) $(ARGS)

# Report: make report [RUN=id] [ARGS="--data_dir DIR"]; setup-browser is for its browser test.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
.PHONY: report setup-browser

report: $(VENV)/.installed ## figures and one HTML page for RUN (default: the run with the best recorded score) in RUN/report/
	$(PY) -m competition.report --models_dir $(MODELS_DIR) $(RUN_FLAG) $(ARGS)

setup-browser: ## install Debian's chromium (headless, for the report's browser test) if missing
	command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

# Edge (Raspberry Pi): make pair-models [RUN=id] (once per data set), make tflite [RUN=id] [ARGS="--calibration_size 1000"],
# make check-edge [RUN=id].
# test-edge runs edge/tests without TensorFlow, in one venv per interpreter, on build/edge-fixtures.
# read/serve/camera/bench-edge run MODEL (default: the int8 model exported from the run with the best
# recorded score, named on stderr); on a Pi run the modules with a model's path.
EDGE_FIXTURES := build/edge-fixtures
MODEL ?=
LOCATE_MODEL = model="$(MODEL)"; [ -n "$$model" ] || model=$$($(PY) -m edge.export.locate --models_dir $(MODELS_DIR) $(RUN_FLAG)) || exit $$?;
EDGE_PY := .venv-litert/bin/python
.PHONY: tflite pair-models check-edge test-edge test-pi read serve camera bench-edge load-test-serve read-accuracy

tflite: $(VENV)/.installed ## export RUN (default: the best-scored run) to float32, dynamic-range, float16, int8 TFLite and its data's pair models in RUN/tflite/ (about a minute)
	$(PY) -m edge.export.tflite --models_dir $(MODELS_DIR) $(RUN_FLAG) $(ARGS)

pair-models: $(VENV)/.installed ## train the reader's pair models on DATA_DIR (or RUN's data) into MODELS_DIR/pair-models/, once per data set; make tflite converts them
	$(PY) -m competition.train_pairs --models_dir $(MODELS_DIR) $(if $(RUN),--run $(RUN),--data_dir $(DATA_DIR)) $(ARGS)

check-edge: $(VENV)/.installed ## each TFLite variant vs the Keras model: accuracy, agreement, size, latency; fails if int8 drops > 0.3 points
	$(PY) -m edge.export.check --models_dir $(MODELS_DIR) $(RUN_FLAG) $(ARGS)

$(EDGE_FIXTURES)/manifest.json: $(VENV)/.installed scripts/edge_fixtures.py edge/export/tflite.py edge/export/convert.py competition/training/pair_runs.py competition/model/designs.py edge/forms/written.py
	$(PY) scripts/edge_fixtures.py --out $(EDGE_FIXTURES)

.venv-%/.installed: edge/tests/requirements-%.txt pyproject.toml
	$(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install -r $<
	.venv-$*/bin/python -m pip install --no-deps -e .
	touch $@

test-edge: $(EDGE_FIXTURES)/manifest.json .venv-litert/.installed .venv-tflite/.installed ## the edge tests without TensorFlow: ai-edge-litert (numpy 2), tflite-runtime 2.14 (numpy<2)
	EDGE_EXPECT_INTERPRETER=ai_edge_litert .venv-litert/bin/python -m pytest -q edge/tests
	EDGE_EXPECT_INTERPRETER=tflite_runtime .venv-tflite/bin/python -m pytest -q edge/tests

test-pi: $(EDGE_FIXTURES)/manifest.json .venv-tflite/.installed ## an emulated Raspberry Pi 4 (qemu, aarch64 Python 3.11, tflite-runtime): edge.pi.classify, edge.pi.read on a photo, edge.pi.camera on a video, edge.pi.bench; answers compared with x86
	$(PY) scripts/emulated_pi.py --fixtures $(EDGE_FIXTURES) --x86_python .venv-tflite/bin/python $(ARGS)

read: .venv-litert/.installed ## read the number in each of IMAGES ("a.jpg b.png") with MODEL (default: the best-scored run's exported int8 model) (edge.pi.read)
	@$(LOCATE_MODEL) set -x; $(EDGE_PY) -m edge.pi.read "$$model" $(IMAGES) $(ARGS)

serve: .venv-litert/.installed ## the drawing page and JSON API for MODEL on http://127.0.0.1:8000/ (edge.pi.serve)
	@$(LOCATE_MODEL) set -x; $(EDGE_PY) -m edge.pi.serve "$$model" $(ARGS)

camera: .venv-litert/.installed ## read numbers live from CAMERA (default 0; a camera index, video file or picamera) (edge.pi.camera)
	@$(LOCATE_MODEL) set -x; $(EDGE_PY) -m edge.pi.camera "$$model" --source $(or $(CAMERA),0) $(ARGS)

bench-edge: .venv-litert/.installed ## ms per digit and digits/s of MODEL (default as make read) per thread count, with the CPU named (edge.pi.bench)
	@$(LOCATE_MODEL) set -x; $(EDGE_PY) -m edge.pi.bench "$$model" $(ARGS)

load-test-serve: $(EDGE_FIXTURES)/manifest.json .venv-litert/.installed ## 8 clients, 30 s of valid and malformed requests and images holding no number against edge.pi.serve; every answer checked, the longest image request against the deadline
	$(EDGE_PY) scripts/load_test_serve.py --model $(or $(MODEL),$(EDGE_FIXTURES)/model_int8.tflite) $(ARGS)

read-accuracy: $(VENV)/.installed ## edge.pi.read on photos of numbers made of RUN's validation digits, per form, and on images holding no number (needs ../shared data); ARGS="--out F" keeps the figures, "--before F" prints them beside the next run's
	$(PY) scripts/read_accuracy.py --models_dir $(MODELS_DIR) $(RUN_FLAG) $(ARGS)

bench: $(VENV)/.installed ## training images/s, the share of this machine's matmul limit, and the notebook baseline
	$(PY) scripts/bench.py --data_dir $(DATA_DIR) $(ARGS)

bench-speed: $(VENV)/.installed ## images/s of the strong model under each speed choice (batch, XLA, threads, pipeline, metrics)
	$(PY) scripts/bench_speed.py $(ARGS)

# .venv-kaggle: Kaggle's image's libraries (TensorFlow 2.19, Keras 3.13, ...) with nbconvert, in which the
# kernel of make kaggle-best runs as a notebook, as on Kaggle (tests/test_kaggle_notebook.py); not the project.
KAGGLE_PY := .venv-kaggle/bin/python
.venv-kaggle/.installed: tests/requirements-kaggle.txt
	$(PYTHON) -m venv .venv-kaggle
	$(KAGGLE_PY) -m pip install -r $<
	touch $@

test: $(VENV)/.installed .venv-kaggle/.installed ## run the test suite (the Kaggle kernel in .venv-kaggle too), then the edge suites, without TensorFlow
	DIGITS_KAGGLE_RUNTIME=$(CURDIR)/$(KAGGLE_PY) $(PY) -m pytest -q tests research/tests
	$(MAKE) --no-print-directory test-edge

clean: ## remove .venv (models/ and data/ are kept)
	rm -rf $(VENV)
