"""Readers of rating-log *formats* (Amazon reviews 2014/2018 and metadata, every
MovieLens release), on small fixture files in each official format made here; and the
catalogue files read through the same parsers (marked ``data``)."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metaecom.data import amazon, combine_reviews, movielens, read_amazon_metadata, read_amazon_reviews
from metaecom.data import read_movielens, shared_ids
from metaecom.data.problems import data_problems
from metaecom.data.rating_log import DuplicateRatingsError
from metaecom.data.schema import SchemaError

from mirror import MIRROR, needs_mirror, use_private_cache


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Parsed tables go to a cache of this test module, never the reader's."""
    use_private_cache(tmp_path_factory, monkeypatch, "formats-cache")


def problem_counts(frame: pd.DataFrame) -> dict[str, int]:
    table = data_problems(frame)
    return dict(zip(table["problem"], table["count"]))


def in_seconds(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with timestamps in seconds: a table read back from the parse cache (Parquet)
    has them in milliseconds."""
    return frame.astype({"timestamp": "datetime64[s, UTC]"})


def rule_of(frame: pd.DataFrame, start: str) -> str:
    table = data_problems(frame)
    return table.loc[table["problem"].str.startswith(start), "rule"].item()


# --- Amazon reviews: fixtures in the official formats -----------------------------------

REVIEWS_2018 = [
    {"overall": 5.0, "verified": True, "reviewTime": "09 1, 2015", "reviewerID": "A1", "asin": "B01",
     "style": {"Size:": " Large"}, "reviewerName": "Ann", "reviewText": "Lovely.", "summary": "Five Stars",
     "unixReviewTime": 1441065600, "vote": "2"},
    {"overall": 2.0, "verified": False, "reviewerID": "A2", "asin": "B01", "summary": "Meh",
     "unixReviewTime": 1441152000},  # no reviewText: the release leaves it out
    {"overall": 4.0, "verified": True, "reviewerID": "A1", "asin": "B02", "reviewText": "Good", "summary": "ok",
     "unixReviewTime": 1441238400, "image": ["https://x/y.jpg"]},
]
REVIEWS_2014 = [
    {"reviewerID": "A2SUAM1J3GNN3B", "asin": "0000013714", "reviewerName": "J. McDonald", "helpful": [2, 3],
     "reviewText": "I bought this for my husband.", "overall": 5.0, "summary": "Heavenly Highway Hymns",
     "unixReviewTime": 1252800000, "reviewTime": "09 13, 2009"},
    {"reviewerID": "A1", "asin": "0000013714", "reviewerName": "K", "helpful": [0, 0], "reviewText": "Fine.",
     "overall": 3.0, "summary": "Fine", "unixReviewTime": 1366934400, "reviewTime": "04 26, 2013"},
]


def json_lines(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def write_packaged(folder: Path, stem: str, records, packaging: str) -> Path:
    """``records`` as JSON lines in one of the packagings the releases use."""
    raw = json_lines(records)
    if packaging == "json.gz":
        path = folder / f"{stem}.json.gz"
        path.write_bytes(gzip.compress(raw))
    elif packaging in ("json", "jsonl"):
        path = folder / f"{stem}.{packaging}"
        path.write_bytes(raw)
    else:
        path = folder / f"{stem}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{stem}.json", raw)
    return path


def test_2018_reviews_parsed_values_and_dtypes(tmp_path):
    frame = read_amazon_reviews(write_packaged(tmp_path, "All_Beauty_5", REVIEWS_2018, "json.gz"))
    assert dict(frame.dtypes.astype(str)) == {
        "user_id": "string", "item_id": "string", "rating": "float32", "timestamp": "datetime64[s, UTC]",
        "verified": "bool", "summary": "string", "text": "string"}
    assert frame["user_id"].tolist() == ["A1", "A2", "A1"] and frame["item_id"].tolist() == ["B01", "B01", "B02"]
    assert frame["rating"].tolist() == [5.0, 2.0, 4.0] and frame["verified"].tolist() == [True, False, True]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2015-09-01", tz="UTC")
    assert frame["text"].tolist() == ["Lovely.", "", "Good"] and frame["summary"].iloc[1] == "Meh"
    assert data_problems(frame).empty


def test_2014_reviews_lack_verified_which_reads_false(tmp_path):
    frame = read_amazon_reviews(write_packaged(tmp_path, "reviews_Books_5", REVIEWS_2014, "json.gz"))
    assert frame["verified"].dtype == bool and not frame["verified"].any()
    assert frame["timestamp"].tolist() == list(pd.to_datetime([1252800000, 1366934400], unit="s", utc=True))
    assert frame["text"].iloc[0] == "I bought this for my husband." and frame["rating"].tolist() == [5.0, 3.0]


def test_2014_review_time_string_when_unix_time_is_absent(tmp_path):
    records = [{k: v for k, v in r.items() if k != "unixReviewTime"} for r in REVIEWS_2014]
    frame = read_amazon_reviews(write_packaged(tmp_path, "reviews_Books_5", records, "json"))
    assert frame["timestamp"].tolist() == [pd.Timestamp("2009-09-13", tz="UTC"), pd.Timestamp("2013-04-26", tz="UTC")]


@pytest.mark.parametrize("packaging", ["json", "jsonl", "zip"])
def test_every_packaging_reads_like_the_gzipped_file(tmp_path, packaging):
    gzipped = read_amazon_reviews(write_packaged(tmp_path, "Gift_Cards", REVIEWS_2018, "json.gz"))
    other = read_amazon_reviews(write_packaged(tmp_path, "Gift_Cards", REVIEWS_2018, packaging))
    pd.testing.assert_frame_equal(other, gzipped)


# (user, item) A1/B01 three times: at t=100, at t=300 (text "tie 1") and again at t=300
# ("tie 2", the later row); A2/B01 once.
DUPLICATED = [
    {"reviewerID": "A1", "asin": "B01", "overall": 1.0, "unixReviewTime": 300, "reviewText": "tie 1"},
    {"reviewerID": "A2", "asin": "B01", "overall": 4.0, "unixReviewTime": 200, "reviewText": "other user"},
    {"reviewerID": "A1", "asin": "B01", "overall": 3.0, "unixReviewTime": 100, "reviewText": "earliest"},
    {"reviewerID": "A1", "asin": "B01", "overall": 5.0, "unixReviewTime": 300, "reviewText": "tie 2"},
]


def test_duplicates_latest_keeps_each_pairs_latest_review_ties_by_file_order():
    frame = read_amazon_reviews(pd.DataFrame(DUPLICATED))
    assert frame["text"].tolist() == ["other user", "tie 2"]  # file order kept
    assert problem_counts(frame) == {"(user, item) pair rated more than once: extra rows": 2}
    assert "latest" in rule_of(frame, "(user, item)")
    assert "A1/B01" in data_problems(frame)["examples"].item()


def test_duplicates_keep_keeps_all_and_still_reports():
    frame = read_amazon_reviews(pd.DataFrame(DUPLICATED), duplicates="keep")
    assert len(frame) == 4 and frame["text"].tolist()[0] == "tie 1"
    assert problem_counts(frame) == {"(user, item) pair rated more than once: extra rows": 2}
    assert "duplicates='keep'" in rule_of(frame, "(user, item)")


def test_duplicates_error_raises_with_count_and_example():
    with pytest.raises(DuplicateRatingsError, match=r"2 rows rate a \(user, item\) pair.*A1/B01"):
        read_amazon_reviews(pd.DataFrame(DUPLICATED), duplicates="error")
    read_amazon_reviews(pd.DataFrame(DUPLICATED[:3]).drop(index=2), duplicates="error")  # no repeat: no error
    with pytest.raises(ValueError, match="duplicates must be one of"):
        read_amazon_reviews(pd.DataFrame(DUPLICATED), duplicates="first")


def test_bad_ratings_and_missing_ids_are_dropped_and_counted():
    rows = [("A1", "B1", 5), ("A2", "B1", None), ("A3", "B1", "five"), ("A4", "B1", 0), ("A5", "B1", 6),
            ("A6", "B1", 4.5), (None, "B2", 3), ("A7", " ", 3), ("A8", "B2", "2")]
    table = pd.DataFrame(rows, columns=["reviewerID", "asin", "overall"]).assign(unixReviewTime=1_500_000_000)
    frame = read_amazon_reviews(table)
    assert frame["user_id"].tolist() == ["A1", "A6", "A8"] and frame["rating"].tolist() == [5.0, 4.5, 2.0]
    assert problem_counts(frame) == {"missing user or item id": 2, "rating missing or not a number": 2,
                                     "rating outside 1-5": 2}
    assert set(data_problems(frame)["rule"]) == {"dropped"}


def test_missing_rating_column_names_the_role_and_the_columns_found():
    table = pd.DataFrame(REVIEWS_2018).drop(columns="overall")
    with pytest.raises(SchemaError, match=r"lacks columns for: rating \(any of 'overall'.*Found columns \[.*'asin'"):
        read_amazon_reviews(table)


def test_columns_mapping_reads_a_file_with_its_own_names(tmp_path):
    path = tmp_path / "my_reviews.csv"
    path.write_text("customer,sku,stars,when,body\nu1,p1,4,2021-03-04,nice\nu2,p1,2,2021-03-05,bad\n")
    frame = read_amazon_reviews(path, columns={"user_id": "customer", "item_id": "sku", "rating": "stars",
                                               "timestamp": "when", "text": "body"})
    assert frame["user_id"].tolist() == ["u1", "u2"] and frame["text"].tolist() == ["nice", "bad"]
    assert frame["timestamp"].iloc[1] == pd.Timestamp("2021-03-05", tz="UTC") and not frame["verified"].any()
    with pytest.raises(SchemaError, match="no column 'stars_typo'"):
        read_amazon_reviews(path, columns={"rating": "stars_typo"})


def test_unknown_catalogue_category_says_how_to_load_another():
    with pytest.raises(ValueError,
                       match=r"'Books'.*available: AMAZON_FASHION.*official page.*read_amazon_reviews\(path\)"):
        amazon.load_amazon_reviews("Books")
    with pytest.raises(ValueError, match=r"item metadata.*read_amazon_metadata\(path\)"):
        amazon.load_amazon_metadata("Books")


# --- Amazon metadata ---------------------------------------------------------------------

META_2014 = [  # one Python dict literal per line, as the 2014 release writes them
    "{'asin': '0000031852', 'title': 'Girls Ballet Tutu Zebra Hot Pink', 'price': 3.17, "
    "'related': {'also_bought': ['B00JHONN1S']}, 'salesRank': {'Toys & Games': 211836}, 'brand': 'Coxlists', "
    "'categories': [['Sports & Outdoors', 'Other Sports', 'Dance'], ['Toys & Games']]}",
    "{'asin': '0000031895', 'salesRank': {'Toys & Games': 1}, 'categories': [['Clothing, Shoes & Jewelry']]}",
    "{'asin': '0000031852', 'title': 'a repeated record', 'categories': [['Other']]}",
]
META_2018 = [
    {"asin": "B001", "title": "Gift card", "brand": "Amazon", "main_cat": "Gift Cards",
     "category": ["Gift Cards", "", "Gift Card Categories"], "price": "$25.00"},
    {"asin": "B002", "title": "Magazine", "main_cat": "Books", "category": []},
]


def test_2014_metadata_python_literal_lines(tmp_path):
    path = tmp_path / "meta_Toys.json.gz"
    path.write_bytes(gzip.compress("\n".join(META_2014).encode()))
    meta = read_amazon_metadata(path)
    assert meta["item_id"].tolist() == ["0000031852", "0000031895"]
    assert meta["title"].tolist() == ["Girls Ballet Tutu Zebra Hot Pink", ""] and meta["brand"].iloc[1] == ""
    assert meta["category"].tolist() == ["Sports & Outdoors > Other Sports > Dance", "Clothing, Shoes & Jewelry"]
    assert meta["main_cat"].tolist() == ["Sports & Outdoors", "Clothing, Shoes & Jewelry"]
    assert (meta.dtypes.astype(str) == "string").all()
    assert problem_counts(meta) == {"item listed more than once: extra records": 1}
    assert rule_of(meta, "item listed") == "kept the first record of each item"


def test_2018_metadata_in_a_zip(tmp_path):
    meta = read_amazon_metadata(write_packaged(tmp_path, "meta_Gift_Cards", META_2018, "zip"))
    assert meta["category"].tolist() == ["Gift Cards > Gift Card Categories", ""]
    assert meta["main_cat"].tolist() == ["Gift Cards", "Books"] and meta["brand"].tolist() == ["Amazon", ""]
    assert data_problems(meta).empty


# --- several sources: shared ids -----------------------------------------------------------


def _log(users, items):
    return read_amazon_reviews(pd.DataFrame({"reviewerID": users, "asin": items, "overall": 5.0,
                                             "unixReviewTime": range(len(users))}))


def test_shared_ids_lists_ids_in_several_sources():
    frames = {"Beauty": _log(["u1", "u2", "u2"], ["a", "a", "b"]), "Gifts": _log(["u2", "u3"], ["c", "c"]),
              "Magazines": _log(["u3", "u2"], ["d", "d"])}
    shared = shared_ids(frames)
    assert shared["id"].tolist() == ["u2", "u3"] and shared["n_sources"].tolist() == [3, 2]
    assert shared["sources"].tolist() == ["Beauty, Gifts, Magazines", "Gifts, Magazines"]


@pytest.mark.parametrize("rule,users,says", [
    ("keep", ["u1", "u2", "u2", "u3"], "kept as they are"), ("drop", ["u1", "u3"], "dropped every row"),
    ("prefix", ["A:u1", "A:u2", "B:u2", "B:u3"], "prefixed with its source")])
def test_combine_reviews_handles_shared_users_by_the_rule(rule, users, says):
    a = read_amazon_reviews(pd.DataFrame({"reviewerID": ["u1", "u1", "u2"], "asin": ["x", "x", "y"], "overall": 4,
                                          "unixReviewTime": [3, 1, 2]}))  # u1/x twice: the latest is kept
    b = _log(["u2", "u3"], ["c", "c"])
    combined = combine_reviews({"A": a, "B": b}, shared_users=rule)
    assert combined["user_id"].tolist() == users
    assert combined["source"].dtype == "category" and list(combined["source"].cat.categories) == ["A", "B"]
    assert problem_counts(combined) == {"A: (user, item) pair rated more than once: extra rows": 1,  # carried
                                        "user id in more than one source (count: ids)": 1}  # u2
    assert says in rule_of(combined, "user id in more")
    with pytest.raises(ValueError, match="shared_users must be one of"):
        combine_reviews({"A": a}, shared_users="merge")


# --- MovieLens, every release format -------------------------------------------------------

ML_100K = {
    "u.data": "1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t891717742\n",
    "u.user": "1|24|M|technician|85711\n2|53|F|other|94043\n",
    "u.genre": "unknown|0\nAction|1\nComedy|2\n\n",
    "u.item": "10|Toy Story (1995)|01-Jan-1995||http://x|0|0|1\n20|GoldenEye (1995)|01-Jan-1995||http://y|0|1|0\n",
}
ML_1M = {
    "ratings.dat": "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298709\n",
    "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
    "movies.dat": "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::"
                  "Animation|Children's|Musical\n",
}
ML_CSV = {
    "ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,0.5,964982224\n",
    "movies.csv": 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children\n'
                  '3,"Grumpier Old Men, The (1995)",Comedy|Romance\n4,Untitled,(no genres listed)\n',
}


def write_release(tmp_path: Path, files: dict[str, str], folder: str, as_zip: bool) -> Path:
    if as_zip:
        path = tmp_path / f"{folder}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for name, text in files.items():
                archive.writestr(f"{folder}/{name}", text.encode("latin-1"))
        return path
    (tmp_path / folder).mkdir()
    for name, text in files.items():
        (tmp_path / folder / name).write_bytes(text.encode("latin-1"))
    return tmp_path / folder


@pytest.mark.parametrize("as_zip", [False, True])
def test_movielens_100k_release(tmp_path, as_zip):
    ml = read_movielens(write_release(tmp_path, ML_100K, "ml-100k", as_zip))
    assert dict(ml.ratings.dtypes.astype(str)) == {"user_id": "int32", "item_id": "int32", "rating": "int8",
                                                   "timestamp": "datetime64[s, UTC]"}
    assert ml.ratings["rating"].tolist() == [5, 3, 4] and ml.ratings["item_id"].tolist() == [10, 20, 10]
    assert ml.users["occupation"].tolist() == ["technician", "other"] and ml.users["age"].tolist() == [24, 53]
    assert ml.genres == ["unknown", "Action", "Comedy"] and ml.items["genre_Comedy"].tolist() == [True, False]
    assert data_problems(ml.ratings).empty


@pytest.mark.parametrize("as_zip", [False, True])
def test_movielens_1m_release(tmp_path, as_zip):
    ml = read_movielens(write_release(tmp_path, ML_1M, "ml-1m", as_zip))
    assert ml.ratings["rating"].dtype == np.int8 and ml.ratings["user_id"].tolist() == [1, 1, 2]
    assert ml.ratings["timestamp"].iloc[0] == pd.Timestamp(978300760, unit="s", tz="UTC")
    assert ml.users["occupation"].tolist() == ["K-12 student", "self-employed"]
    assert ml.genres == movielens.ML_1M_GENRES and ml.items["genre_Musical"].tolist() == [False, True]


def test_movielens_10m_dat_files_have_half_stars_and_no_users(tmp_path):
    files = {"ratings.dat": "1::122::5::838985046\n1::185::4.5::838983525\n",
             "movies.dat": "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action|IMAX\n"}
    ml = read_movielens(write_release(tmp_path, files, "ml-10M100K", as_zip=False))
    assert ml.ratings["rating"].dtype == np.float32 and ml.ratings["rating"].tolist() == [5.0, 4.5]
    assert ml.users.empty and ml.genres[-1] == "IMAX" and ml.items["genre_IMAX"].tolist() == [False, True]


@pytest.mark.parametrize("as_zip", [False, True])
def test_movielens_csv_release_half_stars_and_empty_users(tmp_path, as_zip):
    ml = read_movielens(write_release(tmp_path, ML_CSV, "ml-latest-small", as_zip))
    assert ml.ratings["rating"].dtype == np.float32 and ml.ratings["rating"].tolist() == [4.0, 4.5, 0.5]
    assert ml.users.empty and dict(ml.users.dtypes.astype(str)) == {
        "user_id": "int32", "age": "int16", "gender": "category", "occupation": "category", "zip": "string"}
    assert ml.items["title"].tolist()[1] == "Grumpier Old Men, The (1995)"
    assert ml.items["year"].tolist()[:2] == [1995] * 2 and pd.isna(ml.items["year"].iloc[2])
    assert ml.genres == ["Adventure", "Animation", "Children", "Comedy", "Romance"]
    assert not ml.items.filter(like="genre_").iloc[2].any()  # "(no genres listed)" is not a genre


def test_movielens_bad_ratings_and_duplicates_by_rule(tmp_path):
    files = dict(ML_CSV, **{"ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,100\n1,1,2.0,300\n1,1,3.0,200\n"
                                           "2,1,5.5,1\n2,3,0,1\n2,4,3.3,1\nx,4,3,1\n3,4,,1\n3,1,5,1\n"})
    folder = write_release(tmp_path, files, "ml-latest-small", as_zip=False)
    ml = read_movielens(folder)
    assert ml.ratings[["user_id", "item_id", "rating"]].values.tolist() == [[1, 1, 2.0], [3, 1, 5.0]]
    assert problem_counts(ml.ratings) == {"missing user or item id": 1, "rating missing or not a number": 1,
                                          "rating outside 0.5-5 in steps of 0.5": 3,
                                          "(user, item) pair rated more than once: extra rows": 2}
    assert len(read_movielens(folder, duplicates="keep").ratings) == 4
    with pytest.raises(DuplicateRatingsError, match=r"2 rows .* 1/1"):
        read_movielens(folder, duplicates="error")


def test_movielens_release_with_missing_files_names_them(tmp_path):
    folder = write_release(tmp_path, {"ratings.csv": ML_CSV["ratings.csv"]}, "partial", as_zip=False)
    with pytest.raises(FileNotFoundError, match=r"also needs \['movies.csv'\]"):
        read_movielens(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("nothing")
    with pytest.raises(FileNotFoundError, match=r"no MovieLens ratings file.*found \['README'\]"):
        read_movielens(empty)
    odd = dict(ML_CSV, **{"ratings.csv": "user,movie,stars,ts\n1,1,4,1\n"})
    bad_header = write_release(tmp_path, odd, "odd", as_zip=False)
    with pytest.raises(SchemaError, match=r"ratings.csv lacks columns for: user_id \(any of 'userId'\)"):
        read_movielens(bad_header)


# --- the catalogue files, through the same parsers ----------------------------------------


@needs_mirror
@pytest.mark.parametrize("category,rows,repeated", [
    ("AMAZON_FASHION", 3176, 134), ("All_Beauty", 5269, 1177), ("Gift_Cards", 2972, 7),
    ("Magazine_Subscriptions", 2375, 73)])
def test_catalogue_reviews_repeated_pairs_removed_and_reported(category, rows, repeated):
    kept_all = amazon.load_amazon_reviews(category, duplicates="keep")
    latest = amazon.load_amazon_reviews(category)
    assert len(kept_all) == rows and len(latest) == rows - repeated
    assert problem_counts(latest) == {"(user, item) pair rated more than once: extra rows": repeated}
    assert not latest.duplicated(["user_id", "item_id"]).any()
    assert latest["user_id"].nunique() == kept_all["user_id"].nunique()
    reloaded = amazon.load_amazon_reviews(category)  # from the parse cache: the report survives it
    assert problem_counts(reloaded) == problem_counts(latest)


@needs_mirror
def test_catalogue_file_repackaged_as_zip_reads_the_same(tmp_path):
    raw = gzip.decompress((Path(MIRROR) / "amazon-reviews-2018" / "All_Beauty_5.json.gz").read_bytes())
    path = tmp_path / "All_Beauty_5.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("All_Beauty_5.json", raw)
    pd.testing.assert_frame_equal(read_amazon_reviews(path), in_seconds(amazon.load_amazon_reviews("All_Beauty")))


@needs_mirror
def test_catalogue_metadata_repeats_reported_and_shared_reviewers():
    meta = amazon.load_amazon_metadata("Magazine_Subscriptions")
    assert len(meta) == 2320 and problem_counts(meta) == {"item listed more than once: extra records": 1065}
    frames = {c: amazon.load_amazon_reviews(c) for c in amazon.CATEGORIES}
    users = {c: set(f["user_id"]) for c, f in frames.items()}
    in_several = {u for u in set().union(*users.values()) if sum(u in s for s in users.values()) > 1}
    assert set(shared_ids(frames)["id"]) == in_several
    combined = combine_reviews(frames, shared_users="drop")
    assert not combined["user_id"].isin(in_several).any()
    assert len(combined) == sum(len(f) for f in frames.values()) - sum(
        f["user_id"].isin(in_several).sum() for f in frames.values())


@needs_mirror
def test_read_movielens_on_the_mirror_folder_equals_the_catalogue_loader():
    ml = read_movielens(Path(MIRROR) / "movielens-100k")
    catalogue = movielens.load_movielens_100k()
    pd.testing.assert_frame_equal(ml.ratings, in_seconds(catalogue.ratings))
    pd.testing.assert_frame_equal(ml.items, catalogue.items)
    assert len(ml.ratings) == 100_000 and data_problems(catalogue.ratings).empty
