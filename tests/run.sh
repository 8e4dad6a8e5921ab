#!/usr/bin/env bash
# Run the whole test suite: package unit tests, every notebook under book/ through nbval
# in smoke mode, papermill runs, the strict book build, the offline check of the built
# HTML and a headless-browser check of a rendered chapter.
# Usage: ./tests/run.sh              (extra arguments go to pytest, e.g. -k parameters)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/venv.sh"
export METAECOM_SMOKE=1
python -m pytest -c tests/pytest.ini --rootdir . "$@"
