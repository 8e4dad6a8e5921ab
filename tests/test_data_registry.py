"""The dataset registry: mirror, cache, verified atomic downloads, archives, clear errors.

Every test uses its own temporary mirror and cache, and a web server on 127.0.0.1.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from metaecom.data.registry import (
    CACHE_ENV, MIRROR_ENV, ChecksumError, DataUnavailableError, RemoteFile, UnsafeArchiveError,
    cache_dir, fetch, mirror_dir, safe_extract_member, sha256_of, verify,
)

DATA = b"user\titem\trating\n1\t2\t5\n" * 100


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, hidden ones (such as '.part-' files) included."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


class _FileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the server's folder and records each requested path."""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


class _TruncatingHandler(_FileHandler):
    """Promises more bytes than it sends, then closes the connection: an interrupted download."""

    def do_GET(self):
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA) * 10))
        self.end_headers()
        self.wfile.write(DATA)
        self.wfile.flush()
        self.close_connection = True


def _serve(folder: Path, handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    server.requests = []
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP; yields (folder, base URL, server)."""
    folder = tmp_path / "www"
    folder.mkdir()
    server = _serve(folder, _FileHandler)
    yield folder, f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder, and no mirror."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return folder


@pytest.fixture
def mirror(tmp_path, monkeypatch, cache):
    folder = tmp_path / "mirror"
    folder.mkdir()
    monkeypatch.setenv(MIRROR_ENV, str(folder))
    return folder


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cache_dir_and_mirror_dir_follow_the_environment(cache, monkeypatch, tmp_path):
    assert cache_dir() == cache
    assert mirror_dir() is None
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    assert mirror_dir() == tmp_path


def test_cache_dir_defaults_to_the_checkout(monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    root = Path(__file__).resolve().parents[1]
    assert cache_dir() == root / "data" / "cache"


def test_mirror_dir_that_is_not_a_directory_is_an_error(tmp_path, monkeypatch):
    not_a_dir = tmp_path / "mirror.txt"
    not_a_dir.write_text("x")
    monkeypatch.setenv(MIRROR_ENV, str(not_a_dir))
    with pytest.raises(DataUnavailableError, match=MIRROR_ENV) as info:
        mirror_dir()
    assert str(not_a_dir) in str(info.value)


def test_mirror_hit_returns_the_mirror_copy_and_writes_nothing(mirror, cache):
    copy = mirror / "ml-100k" / "u.data"
    copy.parent.mkdir()
    copy.write_bytes(DATA)
    got = fetch(RemoteFile("ml-100k/u.data", sha256(DATA), url="http://127.0.0.1:9/never"))
    assert got == copy
    assert not cache.exists() or files_under(cache) == []


def test_bad_mirror_copy_is_reported_and_left_alone(mirror, cache):
    (mirror / "u.data").write_bytes(DATA + b"tampered")
    expected = sha256(DATA)
    with pytest.raises(ChecksumError) as info:
        fetch(RemoteFile("u.data", expected))
    message = str(info.value)
    assert "u.data" in message and "mirror" in message
    assert expected in message and sha256(DATA + b"tampered") in message
    assert (mirror / "u.data").read_bytes() == DATA + b"tampered"


def test_download_then_cache_hit(served, cache):
    folder, base, server = served
    (folder / "u.data").write_bytes(DATA)
    file = RemoteFile("ml-100k/u.data", sha256(DATA), url=f"{base}/u.data")
    got = fetch(file, show_progress=False)
    assert got == cache / "ml-100k" / "u.data" and got.read_bytes() == DATA
    assert files_under(cache) == [got]
    assert server.requests == ["/u.data"]
    server.shutdown()
    server.server_close()  # a second download would now fail
    assert fetch(file, show_progress=True) == got


def test_download_with_wrong_digest_is_removed(served, cache):
    folder, base, _ = served
    (folder / "u.data").write_bytes(DATA)
    expected = sha256(b"something else")
    with pytest.raises(ChecksumError) as info:
        fetch(RemoteFile("ml-100k/u.data", expected, url=f"{base}/u.data"), show_progress=False)
    message = str(info.value)
    assert "ml-100k/u.data" in message and expected in message and sha256(DATA) in message
    assert "removed" in message
    assert files_under(cache) == []  # no final file, no '.part-' file


def test_corrupt_cache_file_is_replaced(served, cache):
    folder, base, server = served
    (folder / "u.data").write_bytes(DATA)
    cached = cache / "u.data"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"truncated")
    with pytest.warns(RuntimeWarning, match="removing it"):
        got = fetch(RemoteFile("u.data", sha256(DATA), url=f"{base}/u.data"), show_progress=False)
    assert got == cached and cached.read_bytes() == DATA
    assert server.requests == ["/u.data"]


def test_missing_everywhere_names_file_and_mirror_variable(cache):
    file = RemoteFile("movielens-1m/ratings.dat", sha256(DATA), note="ratings.dat is not in the offline mirror.")
    with pytest.raises(DataUnavailableError) as info:
        fetch(file)
    message = str(info.value)
    assert "movielens-1m/ratings.dat" in message and MIRROR_ENV in message
    assert "no official download URL" in message and message.endswith("ratings.dat is not in the offline mirror.")


def test_unreachable_url_is_unavailable(cache):
    url = f"http://127.0.0.1:{closed_port()}/x"
    with pytest.raises(DataUnavailableError) as info:
        fetch(RemoteFile("x/y.csv", sha256(DATA), url=url), show_progress=False, timeout=5)
    message = str(info.value)
    assert "x/y.csv" in message and url in message and MIRROR_ENV in message
    assert info.value.__cause__ is not None
    assert files_under(cache) == []


def test_http_404_is_unavailable(served, cache):
    _, base, _ = served
    with pytest.raises(DataUnavailableError, match="404"):
        fetch(RemoteFile("gone.csv", sha256(DATA), url=f"{base}/gone.csv"), show_progress=False)
    assert files_under(cache) == []


def test_interrupted_download_leaves_nothing(tmp_path, cache):
    server = _serve(tmp_path, _TruncatingHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}/u.data"
    try:
        with pytest.raises(DataUnavailableError) as info:
            fetch(RemoteFile("ml-100k/u.data", sha256(DATA), url=url), show_progress=True, timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert url in str(info.value)
    assert server.requests == ["/u.data"]
    assert files_under(cache) == []


def test_keyboard_interrupt_during_download_leaves_nothing(served, cache, monkeypatch):
    folder, base, _ = served
    (folder / "u.data").write_bytes(DATA)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("metaecom.data.registry.progress", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch(RemoteFile("u.data", sha256(DATA), url=f"{base}/u.data"))
    assert files_under(cache) == []


def make_zip(path: Path, members: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path.read_bytes()


def test_member_of_a_downloaded_archive(served, cache):
    folder, base, server = served
    make_zip(folder / "ml-100k.zip", {"ml-100k/": b"", "ml-100k/u.data": DATA, "ml-100k/README": b"hi"})
    archive = RemoteFile("movielens-100k/ml-100k.zip", None, url=f"{base}/ml-100k.zip")
    file = RemoteFile("movielens-100k/ml-100k/u.data", sha256(DATA), archive=archive, member="ml-100k/u.data")
    got = fetch(file, show_progress=False)
    assert got == cache / "movielens-100k" / "ml-100k" / "u.data" and got.read_bytes() == DATA
    assert sorted(p.name for p in files_under(cache)) == ["ml-100k.zip", "u.data"]
    assert fetch(file) == got and server.requests == ["/ml-100k.zip"]


def test_member_with_wrong_digest_is_removed(served, cache):
    folder, base, _ = served
    make_zip(folder / "a.zip", {"u.data": DATA})
    archive = RemoteFile("a.zip", None, url=f"{base}/a.zip")
    with pytest.raises(ChecksumError, match="u.data"):
        fetch(RemoteFile("u.data", sha256(b"other"), archive=archive, member="u.data"), show_progress=False)
    assert [p.name for p in files_under(cache)] == ["a.zip"]


def test_member_of_an_unreachable_archive_names_the_archive_url(cache):
    url = f"http://127.0.0.1:{closed_port()}/ml-1m.zip"
    file = RemoteFile("ml-1m/ratings.dat", sha256(DATA), archive=RemoteFile("ml-1m.zip", None, url=url),
                      member="ml-1m/ratings.dat", note="It can only be downloaded.")
    with pytest.raises(DataUnavailableError) as info:
        fetch(file, timeout=5)
    message = str(info.value)
    assert "ml-1m/ratings.dat" in message and url in message and MIRROR_ENV in message
    assert message.endswith("It can only be downloaded.")


def test_missing_member_lists_existing_ones(tmp_path):
    archive = tmp_path / "a.zip"
    make_zip(archive, {"ml/u.data": DATA})
    with pytest.raises(ValueError, match="ml/u.data"):
        safe_extract_member(archive, "ml/u.item", tmp_path / "out" / "u.item")
    assert not (tmp_path / "out").exists() or files_under(tmp_path / "out") == []


@pytest.mark.parametrize("evil", ["../evil.txt", "/abs.txt", "a/../../evil.txt", "C:evil.txt"])
def test_archive_with_unsafe_member_is_refused(tmp_path, evil):
    archive = tmp_path / "evil.zip"
    make_zip(archive, {"good.txt": b"ok", evil: b"pwned"})
    target = tmp_path / "out" / "good.txt"
    with pytest.raises(UnsafeArchiveError, match="unsafe"):
        safe_extract_member(archive, "good.txt", target)
    with pytest.raises(UnsafeArchiveError):
        safe_extract_member(archive, evil, target)
    assert [p.name for p in files_under(tmp_path)] == ["evil.zip"]


def test_unsafe_archive_fetched_through_the_registry_is_refused(served, cache):
    folder, base, _ = served
    make_zip(folder / "evil.zip", {"../evil.txt": b"pwned", "u.data": DATA})
    archive = RemoteFile("evil.zip", None, url=f"{base}/evil.zip")
    with pytest.raises(UnsafeArchiveError, match="evil.txt"):
        fetch(RemoteFile("sub/u.data", sha256(DATA), archive=archive, member="u.data"), show_progress=False)
    assert [p.name for p in files_under(cache)] == ["evil.zip"]
    assert not (cache.parent / "evil.txt").exists()


def test_md5_and_gitblob_checksums(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    md5 = "md5:" + hashlib.md5(DATA).hexdigest()
    gitblob = "gitblob:" + hashlib.sha1(b"blob %d\0" % len(DATA) + DATA).hexdigest()
    verify(path, md5)
    verify(path, gitblob)
    verify(path, sha256(DATA).upper().replace("SHA256", "sha256"))  # hex case does not matter
    assert sha256_of(path) == hashlib.sha256(DATA).hexdigest()
    path.write_bytes(DATA + b"!")
    for checksum in (md5, gitblob):
        with pytest.raises(ChecksumError) as info:
            verify(path, checksum)
        assert str(path) in str(info.value) and checksum in str(info.value)


def test_gitblob_of_an_empty_file_matches_git(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    verify(path, "gitblob:e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")  # `git hash-object /dev/null`


def test_bad_remote_file_definitions_are_rejected():
    with pytest.raises(ValueError, match="checksum"):
        RemoteFile("a", "sha1:" + "0" * 40)
    with pytest.raises(ValueError, match="checksum"):
        RemoteFile("a", "sha256:abc")
    with pytest.raises(ValueError, match="relative"):
        RemoteFile("../a", sha256(DATA))
    with pytest.raises(ValueError, match="together"):
        RemoteFile("a", sha256(DATA), member="a")
    with pytest.raises(ValueError, match="own checksum"):
        RemoteFile("a", None, archive=RemoteFile("a.zip", None, url="http://127.0.0.1/a.zip"), member="a")
    with pytest.raises(ValueError, match="no checksum"):
        fetch(RemoteFile("a.zip", None, url="http://127.0.0.1/a.zip"))


def test_progress_bar_reports_bytes(served, cache, capsys):
    folder, base, _ = served
    (folder / "u.data").write_bytes(DATA)
    fetch(RemoteFile("u.data", sha256(DATA), url=f"{base}/u.data"), show_progress=True)
    err = capsys.readouterr().err
    assert "u.data" in err and "100%" in err


def test_data_readme_lists_every_catalogued_file_and_digest():
    from pathlib import Path

    from metaecom.data import catalog

    readme = (Path(__file__).resolve().parents[1] / "data" / "README.md").read_text(encoding="utf-8")
    files = []
    for value in vars(catalog).values():
        for item in (value.values() if isinstance(value, dict) else [value]):
            if isinstance(item, RemoteFile):
                files += [item] + ([item.archive] if item.archive else [])
    assert len(files) > 20
    for file in files:
        assert f"`{file.path}`" in readme, f"data/README.md does not list {file.path}"
        if file.checksum:
            assert file.checksum in readme, f"data/README.md lacks the digest of {file.path}"
