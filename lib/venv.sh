# Sourced by book/build.sh and tests/run.sh. Creates the local virtual environment
# (.venv at the repository root, or $METAECOM_VENV) on first use and reinstalls
# requirements.txt whenever it or lib/pyproject.toml changes. Leaves the shell in the
# repository root with the environment's bin/ first on PATH.
set -euo pipefail
METAECOM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$METAECOM_ROOT"
VENV="${METAECOM_VENV:-$METAECOM_ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "error: this book needs Python 3.10 or newer (3.11 is tested); '$PYTHON' is $("$PYTHON" --version 2>&1)." >&2
  echo "       Set PYTHON=/path/to/python3.11 and run the command again." >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating the virtual environment $VENV ..."
  "$PYTHON" -m venv "$VENV"
fi
wanted="$(cat requirements.txt lib/pyproject.toml | sha256sum | cut -d' ' -f1)"
stamp="$VENV/.metaecom-requirements.sha256"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  echo "Installing requirements.txt into $VENV (the first time takes a few minutes) ..."
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$wanted" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
