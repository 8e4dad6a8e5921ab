#!/usr/bin/env bash
# Build the HTML book from the outputs stored in the notebooks (nothing is re-executed).
# Usage: ./book/build.sh            -> _build/html/index.html
# Extra arguments go to `jupyter-book build`, e.g. ./book/build.sh --all
source "$(dirname "${BASH_SOURCE[0]}")/../lib/venv.sh"
jupyter-book build . -W -n --keep-going "$@"
echo "The book is at $METAECOM_ROOT/_build/html/index.html"
