import io
import warnings

from metaecom.progress import LineProgress, progress


def test_line_progress_writes_one_clean_line_at_the_end():
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a TqdmWarning would fail here
        total = sum(LineProgress(range(250), desc="train", out=out, line_every=1e9))
    assert total == sum(range(250))
    text = out.getvalue()
    assert "\r" not in text
    assert text.count("\n") == 1
    assert text.startswith("train: 100%") and "250/250" in text


def test_line_progress_prints_periodic_lines():
    out = io.StringIO()
    for _ in LineProgress(range(5), out=out, line_every=0.0, mininterval=0):
        pass
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2 and lines[-1].startswith("100%")
    assert sum(line.startswith("100%") for line in lines) == 1, "the final line is written once"


def test_disabled_bar_is_silent():
    out = io.StringIO()
    list(LineProgress(range(5), out=out, disable=True))
    assert out.getvalue() == ""


def test_progress_outside_a_terminal_is_line_based(capsys):
    bar = progress(range(3))
    assert isinstance(bar, LineProgress)  # pytest's stderr is not a tty
    bar.close()
    capsys.readouterr()
    list(progress(range(3), desc="x"))
    err = capsys.readouterr().err
    assert "\r" not in err and err.startswith("x: 100%")
