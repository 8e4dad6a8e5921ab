"""MovieLens 100K and 1M: ratings, users with demographics, items with genres.

GroupLens' licence allows research use but no redistribution, so the book downloads the
official archives (or reads an offline mirror); it never ships them.

Schemas (all loaders return a :class:`MovieLens` of three DataFrames):

``ratings``  user_id int32, item_id int32, rating int8 (1-5), timestamp datetime64[s, UTC]
``users``    user_id int32, age int16 (ML-1M: the lower bound of the age bucket),
             gender category {F, M}, occupation category, zip string
``items``    item_id int32, title string, year Int16 (from the title; NA if absent),
             then one bool column per genre, named ``genre_<Genre>``
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaecom.data import catalog
from metaecom.data.parsed import cached_frame
from metaecom.data.registry import fetch

_VERSION = 1
# ML-1M stores occupations as codes; its README gives the names.
ML_1M_OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
]
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


def _ratings(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": frame["user_id"].astype("int32"),
        "item_id": frame["item_id"].astype("int32"),
        "rating": frame["rating"].astype("int8"),
        "timestamp": pd.to_datetime(frame["timestamp"], unit="s", utc=True).astype("datetime64[s, UTC]"),
    })


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
    listed = frame["genres"].str.split("|")
    for g in ML_1M_GENRES:
        items[f"genre_{g}"] = listed.apply(lambda gs, g=g: g in gs)
    return items


def _read(file) -> bytes:
    return fetch(file).read_bytes()


def load_movielens_100k() -> MovieLens:
    """MovieLens 100K: 100,000 ratings by 943 users of 1,682 movies (1997-98)."""
    files = catalog.ML_100K
    key = [_VERSION, *(f.checksum for f in files.values())]
    return MovieLens(
        ratings=cached_frame("ml-100k-ratings", key, lambda: parse_100k_ratings(_read(files["u.data"]))),
        users=cached_frame("ml-100k-users", key, lambda: parse_100k_users(_read(files["u.user"]))),
        items=cached_frame("ml-100k-items", key, lambda: parse_100k_items(_read(files["u.item"]), _read(files["u.genre"]))),
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
        table = cached_frame("ml-1m-ratings", key, lambda: parse_1m_ratings(_read(files["ratings.dat"])))
    else:
        table = _ratings(pd.DataFrame({c: pd.Series(dtype="int64") for c in ["user_id", "item_id", "rating", "timestamp"]}))
    return MovieLens(ratings=table, users=users, items=items)
