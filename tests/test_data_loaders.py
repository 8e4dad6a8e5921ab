"""Each loader on the offline mirror (real data), and the official-format parsers on
small fixtures that the tests make themselves."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from metaecom.data import amazon, intents, movielens, omniglot, products, retail
from metaecom.data.problems import data_problems
from metaecom.data.registry import DataUnavailableError

from mirror import needs_mirror, use_private_cache


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Parsed tables go to a cache shared by this test module, never the reader's."""
    use_private_cache(tmp_path_factory, monkeypatch, "data-cache")


# --- the real data, from the mirror ----------------------------------------------------


@needs_mirror
def test_movielens_100k_matches_published_counts():
    ml = movielens.load_movielens_100k()
    assert ml.ratings.shape == (100_000, 4)
    assert ml.ratings["user_id"].nunique() == 943 and ml.ratings["item_id"].nunique() == 1682
    assert set(ml.ratings["rating"].unique()) == {1, 2, 3, 4, 5}
    assert str(ml.ratings["timestamp"].dtype) == "datetime64[s, UTC]"
    assert len(ml.users) == 943 and set(ml.users["gender"].cat.categories) == {"F", "M"}
    assert len(ml.items) == 1682 and len(ml.genres) == 19
    assert ml.items.loc[ml.items["item_id"] == 1, "title"].item() == "Toy Story (1995)"
    assert ml.items.loc[ml.items["item_id"] == 1, "genre_Animation"].item()


@needs_mirror
def test_movielens_1m_users_and_movies_offline_and_ratings_error_says_download():
    ml = movielens.load_movielens_1m(ratings=False)
    assert len(ml.users) == 6040 and len(ml.items) == 3883 and ml.ratings.empty
    assert ml.users["occupation"].nunique() == 21
    with pytest.raises(DataUnavailableError, match=r"ratings\.dat is not in the offline mirror.*only be downloaded"):
        movielens.load_movielens_1m()


@needs_mirror
@pytest.mark.parametrize("category,reviews,users,items", [
    ("AMAZON_FASHION", 3176, 406, 31), ("All_Beauty", 5269, 991, 85),
    ("Gift_Cards", 2972, 458, 148), ("Magazine_Subscriptions", 2375, 348, 157),
])
def test_amazon_reviews_match_published_5core_counts(category, reviews, users, items):
    frame = amazon.load_amazon_reviews(category, duplicates="keep")
    assert len(frame) == reviews
    assert frame["user_id"].nunique() == users and frame["item_id"].nunique() == items
    assert frame["rating"].between(1, 5).all()
    deduplicated = amazon.load_amazon_reviews(category)       # the default: one review per (user, item)
    assert not deduplicated.duplicated(["user_id", "item_id"]).any()
    assert len(deduplicated) == frame.drop_duplicates(["user_id", "item_id"]).shape[0]
    report = data_problems(deduplicated).set_index("problem")["count"]
    assert report.filter(like="more than once").sum() == reviews - len(deduplicated)


@needs_mirror
def test_amazon_metadata_and_unknown_category():
    meta = amazon.load_amazon_metadata("Magazine_Subscriptions")
    assert meta["item_id"].is_unique and len(meta) == 2320
    with pytest.raises(ValueError, match="no Amazon 2018 item metadata.*All_Beauty.*available: Gift_Cards"):
        amazon.load_amazon_metadata("All_Beauty")


@needs_mirror
def test_pricerunner_matches_published_counts():
    frame = products.load_pricerunner()
    assert len(frame) == 35_311
    assert frame["category"].nunique() == 10 and frame["cluster_id"].nunique() == 13_233
    assert frame["merchant_id"].nunique() == 306


@needs_mirror
def test_online_retail_matches_published_counts():
    frame = retail.load_online_retail()
    assert len(frame) == 541_909 and frame["country"].nunique() == 38
    assert frame["customer_id"].isna().sum() == 135_080
    assert frame["invoice_date"].min() == pd.Timestamp("2010-12-01 08:26:00")


@needs_mirror
def test_omniglot_both_splits_resized():
    background = omniglot.load_omniglot("background", size=28)
    evaluation = omniglot.load_omniglot("evaluation", size=28)
    assert background.images.shape == (964, 20, 28, 28) and evaluation.images.shape == (659, 20, 28, 28)
    assert background.characters["alphabet"].nunique() == 30 and evaluation.characters["alphabet"].nunique() == 20
    assert 0.0 <= background.images.min() and background.images.max() <= 1.0
    ink = background.images.mean()
    assert 0.03 < ink < 0.3, "ink should be a minority of pixels"


@needs_mirror
def test_banking77_and_bitext():
    frame = intents.load_banking77()
    assert (frame["split"] == "train").sum() == 10_003 and (frame["split"] == "test").sum() == 3_080
    assert frame["intent"].nunique() == 77
    bitext = intents.load_bitext()
    assert len(bitext) == 6_480 and bitext["intent"].nunique() == 27 and bitext["category"].nunique() == 11


@needs_mirror
def test_second_load_reads_the_parsed_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("METAECOM_DATA_CACHE", str(tmp_path))
    first = products.load_pricerunner()
    assert list((tmp_path / "parsed").glob("pricerunner-*.parquet"))
    pd.testing.assert_frame_equal(products.load_pricerunner(), first)


@needs_mirror
def test_cached_tables_keep_second_resolution_timestamps_and_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("METAECOM_DATA_CACHE", str(tmp_path))
    first = amazon.load_amazon_reviews("Gift_Cards")
    second = amazon.load_amazon_reviews("Gift_Cards")           # read back from the Parquet cache
    assert str(first["timestamp"].dtype) == str(second["timestamp"].dtype) == "datetime64[s, UTC]"
    pd.testing.assert_frame_equal(second, first)
    assert second.attrs == first.attrs and not data_problems(second).empty


# --- official formats, on fixtures -----------------------------------------------------


def test_ml_1m_official_format_fixture():
    ratings = movielens.parse_1m_ratings(b"1::1193::5::978300760\n1::661::3::978302109\n2::1357::5::978298709\n")
    assert ratings.shape == (3, 4) and ratings["rating"].tolist() == [5, 3, 5]
    assert ratings["timestamp"].iloc[0] == pd.Timestamp(978300760, unit="s", tz="UTC")
    users = movielens.parse_1m_users(b"1::F::1::10::48067\n2::M::56::16::70072\n")
    assert users["occupation"].tolist() == ["K-12 student", "self-employed"] and users["age"].tolist() == [1, 56]
    movies = movielens.parse_1m_movies(b"1::Toy Story (1995)::Animation|Children's|Comedy\n")
    assert movies["year"].item() == 1995 and movies["genre_Comedy"].item() and not movies["genre_Drama"].item()


def test_online_retail_official_xlsx_fixture(tmp_path):
    pytest.importorskip("openpyxl")
    table = pd.DataFrame({
        "InvoiceNo": ["536365", "C536379"], "StockCode": ["85123A", "D"],
        "Description": ["WHITE HANGING HEART T-LIGHT HOLDER", "Discount"], "Quantity": [6, -1],
        "InvoiceDate": pd.to_datetime(["2010-12-01 08:26", "2010-12-01 09:41"]), "UnitPrice": [2.55, 27.5],
        "CustomerID": [17850.0, np.nan], "Country": ["United Kingdom", "United Kingdom"],
    })
    path = tmp_path / "Online Retail.xlsx"
    table.to_excel(path, index=False)
    frame = retail.parse_online_retail_xlsx(path)
    assert frame["invoice"].tolist() == ["536365", "C536379"]
    assert frame["customer_id"].tolist()[0] == 17850 and pd.isna(frame["customer_id"].iloc[1])
    assert frame["quantity"].dtype == "int32" and str(frame["invoice_date"].dtype) == "datetime64[s]"
    with pytest.raises(ValueError, match="541,909"):
        retail.check_published_counts(frame)


def _png(ink: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((~ink).astype(np.uint8) * 255).convert("1").save(buffer, format="PNG")
    return buffer.getvalue()


def test_omniglot_official_zip_fixture(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.random((2, 20, 105, 105)) < 0.1
    path = tmp_path / "images_background.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i, (alphabet, character, prefix) in enumerate([("Greek", "character02", "0002"), ("Arcadian", "character01", "0001")]):
            for j in range(20):
                archive.writestr(f"images_background/{alphabet}/{character}/{prefix}_{j + 1:02d}.png", _png(truth[i, j]))
    ink, characters = omniglot.parse_official_zip(path)
    assert characters["alphabet"].tolist() == ["Arcadian", "Greek"]  # ordered by file prefix
    np.testing.assert_array_equal(ink[0], truth[1])
    np.testing.assert_array_equal(ink[1], truth[0])


def test_omniglot_zip_with_missing_drawings_is_refused(tmp_path):
    path = tmp_path / "images_background.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images_background/Greek/character01/0001_01.png", _png(np.zeros((105, 105), bool)))
    with pytest.raises(ValueError, match=r"has drawings \[1\], expected 1..20"):
        omniglot.parse_official_zip(path)


def test_omniglot_resize_and_rotations():
    ink = np.zeros((1, 2, 105, 105), dtype=bool)
    ink[0, 0, :, :35] = True  # left third inked
    small = omniglot.resize(ink, 28)
    assert small.shape == (1, 2, 28, 28) and small.dtype == np.float32
    assert small[0, 0, :, :9].mean() > 0.99 and small[0, 0, :, 10:].max() == 0
    rotated, source = omniglot.with_rotations(small)
    assert rotated.shape == (4, 2, 28, 28) and source.tolist() == [0, 0, 0, 0]
    np.testing.assert_array_equal(rotated[1, 0], np.rot90(small[0, 0]))
    with pytest.raises(ValueError, match="unknown Omniglot split"):
        omniglot.load_omniglot("test")


def test_held_out_characters_take_every_rotation_with_them():
    labels = np.repeat(np.arange(40), 3)  # 10 characters x 4 rotations, 3 drawings each
    held = omniglot.hold_out_characters(labels, fraction=0.2, seed=1)
    assert held.dtype == bool and held.shape == labels.shape
    held_characters = np.unique(labels[held] // 4)
    assert len(held_characters) == 2
    assert not np.isin(labels[~held] // 4, held_characters).any()  # no rotation left behind
    assert held.sum() == 2 * 4 * 3
    np.testing.assert_array_equal(held, omniglot.hold_out_characters(labels, 0.2, seed=1))
    with pytest.raises(ValueError, match="both need one"):
        omniglot.hold_out_characters(labels, fraction=0.01)
    with pytest.raises(ValueError, match="integer array"):
        omniglot.hold_out_characters(labels.astype(float))


def test_weekly_sales_fills_gaps_and_drops_cancellations():
    frame = pd.DataFrame({
        "invoice": ["1", "2", "C3", "4", "5"],
        "stock_code": ["A", "A", "A", "B", "A"],
        "quantity": [2, 3, 5, 1, 4],
        "invoice_date": pd.to_datetime(["2011-01-03", "2011-01-05", "2011-01-06", "2011-01-10", "2011-01-19"]),
    })
    weekly = retail.weekly_sales(frame)
    a = weekly[weekly["product"] == "A"]
    assert a["value"].tolist() == [5.0, 0.0, 4.0]  # week of Jan 3: 2+3 (the cancellation is dropped); Jan 10: none
    assert a["weeks_since_launch"].tolist() == [0, 1, 2]
    b = weekly[weekly["product"] == "B"]
    assert b["period"].tolist() == list(pd.to_datetime(["2011-01-10", "2011-01-17"])) and b["value"].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="no sales left"):
        retail.weekly_sales(frame[frame["quantity"] < 0])
