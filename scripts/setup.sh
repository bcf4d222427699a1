#!/usr/bin/env bash
# Idempotent set-up: .venv/ from the lock, llama-cpp-python built once with safe CPU flags and cached,
# and (with --test) Debian's Chromium for the browser tests and PostgreSQL for the store tests.
# A second run with nothing changed is ~1 s.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1

LLAMA_VERSION=$(sed -n 's/^llama-cpp-python==\([^ ]*\).*/\1/p' requirements/lock.txt)
# -march=native builds segfault on batched decode on this CPU (AMX); these flags are portable.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF"
FLAGS_KEY=$(printf '%s %s' "$LLAMA_VERSION" "$LLAMA_CMAKE_ARGS" | sha1sum | cut -c1-12)
WHEEL_DIR="${COACH_WHEEL_CACHE:-$HOME/.cache/hp-coach/wheels}/llama-$FLAGS_KEY"
STAMP=.venv/.setup-stamp
WANT=$(cat requirements/lock.txt pyproject.toml scripts/setup.sh | sha1sum | cut -c1-16)

find_links=()
[[ -d /opt/wheels ]] && find_links=(--find-links /opt/wheels)   # torch==2.13.0+cpu lies here

# this machine's pip config lists index folders that may not exist: hide those warnings only
pip() { .venv/bin/python -m pip "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2); }

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    echo "setup: .venv is up to date"
else
    [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
    pip install -q --upgrade pip
    if ! ls "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
        echo "setup: building llama-cpp-python $LLAMA_VERSION once (about 10 minutes on 2 cores)..."
        mkdir -p "$WHEEL_DIR"
        CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip wheel --no-deps --no-cache-dir \
            -w "$WHEEL_DIR" "llama-cpp-python==$LLAMA_VERSION"
    fi
    pip install -q --no-deps --force-reinstall "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
    echo "setup: installing the locked dependencies..."
    pip install -q --no-deps "${find_links[@]}" -r requirements/lock.txt
    pip install -q --no-deps --no-build-isolation -e . 2>/dev/null || pip install -q --no-deps -e .
    echo "$WANT" > "$STAMP"
fi

if [[ $WITH_TEST == 1 ]] && ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium for the browser tests..."
    SUDO=""; [[ $(id -u) != 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# PostgreSQL's server programs for the store tests (tests/services.py starts a throwaway server; none is left running)
if [[ $WITH_TEST == 1 ]] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "setup: installing Debian's postgresql for the store tests..."
    SUDO=""; [[ $(id -u) != 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi

# llama.cpp's own OpenAI-compatible server with parallel slots, for the deployment test and the load benchmark
# (tests/test_deploy.py, bench/run.py load_llama): built once (~10 min on 2 cores) from the sources
# vendored in the same llama-cpp-python sdist, with the same CPU flags, statically; linked as .venv/bin/llama-server
SERVER_BIN="${COACH_WHEEL_CACHE:-$HOME/.cache/hp-coach/wheels}/llama-server-$FLAGS_KEY/llama-server"
if [[ $WITH_TEST == 1 && ! -x "$SERVER_BIN" ]]; then
    echo "setup: building llama.cpp's llama-server once (about 10 minutes on 2 cores)..."
    build=$(mktemp -d)
    pip download -q --no-deps --no-binary :all: -d "$build" "llama-cpp-python==$LLAMA_VERSION"
    tar -xzf "$build"/llama_cpp_python-"$LLAMA_VERSION".tar.gz -C "$build"
    src="$build/llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp"
    cmake=$(command -v cmake || true)   # else PyPI's cmake, in the build folder only (as the wheel build does)
    if [[ -z "$cmake" ]]; then pip install -q --target "$build/tools" cmake && cmake="$build/tools/bin/cmake"; fi
    # shellcheck disable=SC2086  # the flags are words
    PYTHONPATH="$build/tools" "$cmake" -S "$src" -B "$build/out" $LLAMA_CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF >"$build/cmake.log" 2>&1 \
        || { tail -20 "$build/cmake.log" >&2; echo "setup: configuring llama-server failed ($build)" >&2; exit 1; }
    PYTHONPATH="$build/tools" "$cmake" --build "$build/out" --target llama-server -j "$(nproc)" >"$build/build.log" 2>&1 \
        || { tail -20 "$build/build.log" >&2; echo "setup: building llama-server failed ($build)" >&2; exit 1; }
    mkdir -p "$(dirname "$SERVER_BIN")"
    cp "$build/out/bin/llama-server" "$SERVER_BIN.tmp" && mv "$SERVER_BIN.tmp" "$SERVER_BIN"
    rm -rf "$build"
fi
[[ -x "$SERVER_BIN" ]] && ln -sf "$SERVER_BIN" .venv/bin/llama-server

# The coaching library's example and question vectors (~20 s once; cached by content under ~/.cache/hp-coach)
.venv/bin/python -c "from assistant.moves import MOVES_CACHE, MoveLibrary; MoveLibrary.load(cache=MOVES_CACHE)" \
    || { echo "setup: the coaching library (prompts/moves) failed to load" >&2; exit 1; }
