"""MovieLens: ratings, users with demographics, items with genres -- any release.

GroupLens' licence allows research use but no redistribution, so the book downloads the
official archives (or reads an offline mirror); it never ships them. The catalogue
loaders read 100K and 1M; :func:`read_movielens` reads a folder or ``.zip`` of any
release the reader downloaded from https://grouplens.org/datasets/movielens/:

- 100K: ``u.data`` (tab-separated), ``u.user``, ``u.item``, ``u.genre`` (``|``);
- 1M: ``ratings.dat``, ``users.dat``, ``movies.dat`` (``::``); 10M's ``.dat`` files
  (half stars, no ``users.dat``) too;
- the CSV releases (ml-latest-small, ml-latest, 20M, 25M, 32M): ``ratings.csv``
  (userId, movieId, rating, timestamp) and ``movies.csv`` (movieId, title, genres).
  They have no users file: ``users`` is then empty, with the columns below.

Schemas (all loaders return a :class:`MovieLens` of three DataFrames):

``ratings``  user_id int32, item_id int32, rating int8 (1-5 stars: 100K, 1M) or float32
             (half stars: 10M, and every CSV release), timestamp datetime64[s, UTC]
``users``    user_id int32, age int16 (ML-1M: the lower bound of the age bucket),
             gender category {F, M}, occupation category, zip string
``items``    item_id int32, title string, year Int16 (from the title; NA if absent),
             then one bool column per genre, named ``genre_<Genre>``

Data problems are checked and recorded on ``ratings`` by the rules of
:mod:`metaecom.data.rating_log`: rows without a whole-number user or item id, or whose
rating is not 0.5-5 in half stars, are dropped; a (user, item) pair rated more than once
is handled by ``duplicates`` (default: keep the latest). Official files have none.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metaecom.data import catalog
from metaecom.data.parsed import cached_frame
from metaecom.data.problems import record
from metaecom.data.rating_log import check_duplicates_rule, check_rating_log
from metaecom.data.registry import fetch
from metaecom.data.schema import resolve_columns

_VERSION = 2
# ML-1M stores occupations as codes; its README gives the names.
ML_1M_OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
]
_RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
_NO_GENRE = "(no genres listed)"  # the CSV releases' and 10M's marker of a movie without genres
ML_1M_GENRES = [
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]


@dataclass(frozen=True)
class MovieLens:
    """Ratings, users and items of one MovieLens release (schemas in the module doc)."""

    ratings: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame

    @property
    def genres(self) -> list[str]:
        return [c.removeprefix("genre_") for c in self.items.columns if c.startswith("genre_")]


def _year(titles: pd.Series) -> pd.Series:
    return titles.str.extract(r"\((\d{4})\)\s*$", expand=False).astype("Int16")


def _ratings(frame: pd.DataFrame, rating_dtype: str = "int8") -> pd.DataFrame:
    times = frame["timestamp"]
    if not pd.api.types.is_datetime64_any_dtype(times):
        times = pd.to_datetime(times, unit="s", utc=True)
    return pd.DataFrame({
        "user_id": frame["user_id"].astype("int32"),
        "item_id": frame["item_id"].astype("int32"),
        "rating": frame["rating"].astype(rating_dtype),
        "timestamp": times.astype("datetime64[s, UTC]"),
    })


def check_ratings(frame: pd.DataFrame, duplicates: str = "latest", dtype: str | None = None) -> pd.DataFrame:
    """Ratings as read (columns user_id, item_id, rating, timestamp: Unix seconds or
    datetimes; any types) -> the ratings schema, with the data problems checked and
    recorded (module doc). ``dtype`` of rating: "int8", "float32", or None for int8 when
    every kept rating is a whole star, else float32."""
    whole = lambda values: values.where(values == values.round()).astype("Int64")  # noqa: E731
    times = frame["timestamp"]
    if not pd.api.types.is_datetime64_any_dtype(times):
        times = pd.to_datetime(pd.to_numeric(times, errors="coerce"), unit="s", utc=True, errors="coerce")
    raw = pd.DataFrame({"user_id": whole(pd.to_numeric(frame["user_id"], errors="coerce")),
                        "item_id": whole(pd.to_numeric(frame["item_id"], errors="coerce")),
                        "rating": frame["rating"], "timestamp": times})
    kept, problems = check_rating_log(raw, "MovieLens ratings", low=0.5, high=5, step=0.5, duplicates=duplicates)
    if dtype is None:
        dtype = "int8" if (kept["rating"] == kept["rating"].round()).all() else "float32"
    return record(_ratings(kept, dtype), *problems)


def parse_100k_ratings(raw: bytes) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(raw), sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"])
    return _ratings(frame)


def parse_100k_users(raw: bytes) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(raw), sep="|", header=None, names=["user_id", "age", "gender", "occupation", "zip"],
                        dtype={"zip": "string"})
    return frame.astype({"user_id": "int32", "age": "int16", "gender": "category", "occupation": "category"})


def parse_100k_items(raw: bytes, genre_raw: bytes) -> pd.DataFrame:
    genres = [line.split("|")[0] for line in genre_raw.decode("latin-1").splitlines() if line.strip()]
    names = ["item_id", "title", "release_date", "video_release_date", "url", *[f"genre_{g}" for g in genres]]
    frame = pd.read_csv(io.BytesIO(raw), sep="|", header=None, names=names, encoding="latin-1")
    items = pd.DataFrame({"item_id": frame["item_id"].astype("int32"), "title": frame["title"].astype("string")})
    release = pd.to_datetime(frame["release_date"], format="%d-%b-%Y", errors="coerce")
    items["year"] = _year(items["title"]).fillna(release.dt.year.astype("Int16"))
    for g in genres:
        items[f"genre_{g}"] = frame[f"genre_{g}"].astype(bool)
    return items


def parse_1m_ratings(raw: bytes) -> pd.DataFrame:
    values = np.array(re.split(rb"::|\n", raw.strip()), dtype=np.int64).reshape(-1, 4)
    return _ratings(pd.DataFrame(values, columns=["user_id", "item_id", "rating", "timestamp"]))


def parse_1m_users(raw: bytes) -> pd.DataFrame:
    rows = [line.split("::") for line in raw.decode("latin-1").splitlines() if line.strip()]
    frame = pd.DataFrame(rows, columns=["user_id", "gender", "age", "occupation", "zip"])
    occupation = frame["occupation"].astype(int).map(dict(enumerate(ML_1M_OCCUPATIONS)))
    return pd.DataFrame({
        "user_id": frame["user_id"].astype("int32"),
        "age": frame["age"].astype("int16"),
        "gender": frame["gender"].astype("category"),
        "occupation": occupation.astype("category"),
        "zip": frame["zip"].astype("string"),
    })


def parse_1m_movies(raw: bytes) -> pd.DataFrame:
    rows = [line.split("::") for line in raw.decode("latin-1").splitlines() if line.strip()]
    frame = pd.DataFrame(rows, columns=["item_id", "title", "genres"])
    items = pd.DataFrame({"item_id": frame["item_id"].astype("int32"), "title": frame["title"].astype("string")})
    items["year"] = _year(items["title"])
    return _with_genres(items, frame["genres"], ML_1M_GENRES)


def _with_genres(items: pd.DataFrame, genres: pd.Series, known: list[str]) -> pd.DataFrame:
    """One bool column per genre: ``known`` first, then any others the file lists, sorted."""
    listed = genres.fillna("").str.split("|")
    found = {g for gs in listed for g in gs if g and g != _NO_GENRE}
    for g in [*known, *sorted(found - set(known))]:
        items[f"genre_{g}"] = listed.apply(lambda gs, g=g: g in gs)
    return items


def parse_csv_movies(raw: bytes) -> pd.DataFrame:
    """Parse the CSV releases' ``movies.csv`` (movieId, title, genres; UTF-8)."""
    frame = pd.read_csv(io.BytesIO(raw), dtype={"title": "string", "genres": "string"})
    found = resolve_columns(frame, {"item_id": ("movieId",), "title": (), "genres": ()}, None, "movies.csv")
    items = pd.DataFrame({"item_id": frame[found["item_id"]].astype("int32"),
                          "title": frame[found["title"]].astype("string")})
    items["year"] = _year(items["title"])
    return _with_genres(items, frame[found["genres"]].astype("string"), [])


def _csv_ratings(raw: bytes) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(raw))
    roles = {"user_id": ("userId",), "item_id": ("movieId",), "rating": (), "timestamp": ()}
    found = resolve_columns(frame, roles, None, "ratings.csv")
    return pd.DataFrame({role: frame[column] for role, column in found.items()})


def _no_users() -> pd.DataFrame:
    """The users table of a release without one: empty, with the schema's columns."""
    return pd.DataFrame({"user_id": pd.Series(dtype="int32"), "age": pd.Series(dtype="int16"),
                         "gender": pd.Series(dtype=pd.CategoricalDtype(["F", "M"])),
                         "occupation": pd.Series(dtype="category"), "zip": pd.Series(dtype="string")})


def _release_files(source) -> dict:
    """File name -> a function returning its bytes, for every file in a folder or a zip
    (the shallowest file of each name wins; macOS' ``__MACOSX`` copies are ignored)."""
    path, found = Path(source), {}
    if path.is_dir():
        for file in sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: len(p.parts)):
            found.setdefault(file.name, file.read_bytes)
        return found
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/") and not n.startswith("__MACOSX")]
        for name in sorted(names, key=lambda n: n.count("/")):
            found.setdefault(name.rsplit("/", 1)[-1], lambda name=name: zipfile.ZipFile(path).read(name))
        return found
    raise FileNotFoundError(f"read_movielens needs a folder or a .zip of a MovieLens release; {path} is neither")


def read_movielens(source, duplicates: str = "latest") -> MovieLens:
    """Ratings, users and items of the MovieLens release in ``source`` (a folder or a
    ``.zip``; which release is told by its files, see the module doc).

    ``duplicates`` is the rule for a (user, item) pair rated more than once: "latest"
    (keep its latest rating), "keep" or "error". The CSV releases have no users file:
    ``users`` is then empty, with the schema's columns.
    """
    check_duplicates_rule(duplicates)
    files = _release_files(source)

    def need(*names):  # the bytes of each file, or an error naming those missing
        missing = [n for n in names if n not in files]
        if missing:
            raise FileNotFoundError(f"{source}: a MovieLens release with {names[0]} also needs {missing}; "
                                    f"found {sorted(files)}")
        return [files[n]() for n in names]

    users, dtype = _no_users(), None
    if "u.data" in files:
        ratings_raw, item_raw, genre_raw = need("u.data", "u.item", "u.genre")
        ratings = pd.read_csv(io.BytesIO(ratings_raw), sep="\t", header=None, names=_RATING_COLUMNS)
        items = parse_100k_items(item_raw, genre_raw)
        users = parse_100k_users(files["u.user"]()) if "u.user" in files else users
    elif "ratings.dat" in files:
        ratings_raw, movies_raw = need("ratings.dat", "movies.dat")
        ratings = pd.read_csv(io.BytesIO(ratings_raw.replace(b"::", b"\t")), sep="\t", header=None,
                              names=_RATING_COLUMNS)
        items = parse_1m_movies(movies_raw)
        users = parse_1m_users(files["users.dat"]()) if "users.dat" in files else users
    elif "ratings.csv" in files:
        ratings_raw, movies_raw = need("ratings.csv", "movies.csv")
        ratings, items, dtype = _csv_ratings(ratings_raw), parse_csv_movies(movies_raw), "float32"
    else:
        raise FileNotFoundError(f"{source}: no MovieLens ratings file (u.data, ratings.dat or ratings.csv); "
                                f"found {sorted(files)}")
    return MovieLens(ratings=check_ratings(ratings, duplicates, dtype), users=users, items=items)


def _read(file) -> bytes:
    return fetch(file).read_bytes()


def load_movielens_100k() -> MovieLens:
    """MovieLens 100K: 100,000 ratings by 943 users of 1,682 movies (1997-98)."""
    files = catalog.ML_100K
    key = [_VERSION, *(f.checksum for f in files.values())]
    return MovieLens(
        ratings=cached_frame("ml-100k-ratings", key, lambda: check_ratings(parse_100k_ratings(_read(files["u.data"])))),
        users=cached_frame("ml-100k-users", key, lambda: parse_100k_users(_read(files["u.user"]))),
        items=cached_frame("ml-100k-items", key,
                           lambda: parse_100k_items(_read(files["u.item"]), _read(files["u.genre"]))),
    )


def load_movielens_1m(ratings: bool = True) -> MovieLens:
    """MovieLens 1M: 1,000,209 ratings by 6,040 users of 3,883 movies (2000-03).

    Users and movies are in the offline mirror; ``ratings.dat`` is only obtainable by
    download. With ``ratings=False`` the ratings table is empty (users and movies only),
    which works offline.
    """
    files = catalog.ML_1M
    key = [_VERSION, *(f.checksum for f in files.values())]
    users = cached_frame("ml-1m-users", key, lambda: parse_1m_users(_read(files["users.dat"])))
    items = cached_frame("ml-1m-movies", key, lambda: parse_1m_movies(_read(files["movies.dat"])))
    if ratings:
        table = cached_frame("ml-1m-ratings", key,
                             lambda: check_ratings(parse_1m_ratings(_read(files["ratings.dat"]))))
    else:
        table = _ratings(pd.DataFrame({c: pd.Series(dtype="int64") for c in _RATING_COLUMNS}))
    return MovieLens(ratings=table, users=users, items=items)
