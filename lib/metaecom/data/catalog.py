"""Where every dataset file of the book comes from, and the digest it must have.

Each entry is a :class:`~metaecom.data.registry.RemoteFile`: its path inside the offline
mirror and the download cache, its checksum, and how to obtain it officially — a direct
URL, or a member of an official archive. Where the official archive's own digest is
not published, the archive is fetched unverified and every member taken from it is
verified instead. Digests of the official archives are those published by TensorFlow
Datasets' checksum tables (MovieLens, Omniglot); member digests are those of the
official files, recorded in the offline mirror's MANIFEST.

Two datasets also exist in a *converted* form in the offline mirror (Omniglot as NumPy
arrays instead of PNG zips, Online Retail as Parquet instead of XLSX). Both forms are
listed and checksummed; the loaders accept either.
"""

from __future__ import annotations

from metaecom.data.registry import RemoteFile

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
AMAZON_2018 = "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_v2"
UCI = "https://archive.ics.uci.edu/static/public"
BANKING77_RAW = "https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/57ec275d8078af65b7731c2a98be812d844a6d6b/banking_data"
BITEXT_RAW = ("https://raw.githubusercontent.com/bitext/customer-support-llm-chatbot-training-dataset/"
              "7770c035706488e0fdbe4b1ed56f67fead822b88/data/train")
OMNIGLOT_RAW = "https://raw.githubusercontent.com/brendenlake/omniglot/057f034baf2ecb8530bc5710e5a23584d2a519cc/python"


def _members(archive: RemoteFile, folder: str, prefix: str, digests: dict[str, str], note: str = "") -> dict[str, RemoteFile]:
    return {
        name: RemoteFile(path=f"{folder}/{prefix}{name}", checksum=digest, archive=archive, member=f"{prefix}{name}", note=note)
        for name, digest in digests.items()
    }


# --- MovieLens 100K (GroupLens licence: research use, no redistribution) -------------
ML_100K_ZIP = RemoteFile(path="movielens-100k/ml-100k.zip", url=f"{GROUPLENS}/ml-100k.zip",
                         checksum="sha256:50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229")
ML_100K = _members(ML_100K_ZIP, "movielens-100k", "ml-100k/", {
    "u.data": "sha256:06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "sha256:553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "sha256:f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u.genre": "sha256:9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
})

# --- MovieLens 1M ---------------------------------------------------------------------
ML_1M_ZIP = RemoteFile(path="movielens-1m/ml-1m.zip", url=f"{GROUPLENS}/ml-1m.zip",
                       checksum="sha256:a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20")
ML_1M = _members(ML_1M_ZIP, "movielens-1m", "ml-1m/", {
    "users.dat": "sha256:1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
    "movies.dat": "sha256:0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
})
# ratings.dat is not in the offline mirror (the file is over its size limit). Its only
# published fingerprint is the git blob id of the canonical file.
ML_1M["ratings.dat"] = RemoteFile(
    path="movielens-1m/ml-1m/ratings.dat", checksum="gitblob:77a7c4b150f588c23bb9e1f068aa996c0b413695",
    archive=ML_1M_ZIP, member="ml-1m/ratings.dat",
    note="MovieLens-1M ratings.dat is not in the offline mirror: it can only be downloaded "
         f"(from {GROUPLENS}/ml-1m.zip), which needs an internet connection.",
)

# --- Amazon Review Data 2018, 5-core (research use; cite Ni, Li & McAuley 2019) ---------
AMAZON_REVIEWS = {
    category: RemoteFile(path=f"amazon-reviews-2018/{category}_5.json.gz", checksum=digest,
                         url=f"{AMAZON_2018}/categoryFilesSmall/{category}_5.json.gz")
    for category, digest in {
        "AMAZON_FASHION": "sha256:5c73b65d0a5cc5dcd905b75a87086c37513ff0d023b02b381e729ab8a9541cb6",
        "All_Beauty": "sha256:4a6b1eb40c4f58328f3f34181a6ef00f8e3423d801128617cc408a83c9bd0027",
        "Gift_Cards": "sha256:41e1f0e50d3c1c9d7d949fb6315944c8bde51ea6b7429a29fdd0d02cbc07ef25",
        "Magazine_Subscriptions": "sha256:95c124603d62d6acdfd1bd62284934fb6c513db836ea64c2e8176c14256426f2",
    }.items()
}
AMAZON_METADATA = {
    category: RemoteFile(path=f"amazon-reviews-2018/meta_{category}.json.gz", checksum=digest,
                         url=f"{AMAZON_2018}/metaFiles2/meta_{category}.json.gz")
    for category, digest in {
        "Gift_Cards": "sha256:24ac90af3eb47d9c04458a61a44a76a882419190e027c6ec14ee0a993549c34a",
        "Magazine_Subscriptions": "sha256:147cb78dac0f9ce04849b196e2e13cad6a504bff45d53500b7a1fe8121d91595",
    }.items()
}

# --- PriceRunner product classification and clustering (UCI 837, CC BY 4.0) -----------
PRICERUNNER_ZIP = RemoteFile(path="pricerunner-product-classification/product+classification+and+clustering.zip",
                             checksum=None, url=f"{UCI}/837/product+classification+and+clustering.zip")
PRICERUNNER = RemoteFile(
    path="pricerunner-product-classification/pricerunner_aggregate.csv",
    checksum="sha256:632ee1e10267af659015bd50ee54754deaaab29713d366cbfcc59c0dc92e6af8",
    archive=PRICERUNNER_ZIP, member="pricerunner_aggregate.csv",
)

# --- UCI Online Retail (UCI 352, CC BY 4.0) --------------------------------------------
ONLINE_RETAIL_ZIP = RemoteFile(path="uci-online-retail/online+retail.zip", checksum=None, url=f"{UCI}/352/online+retail.zip")
# Official form. UCI publishes no digest; this MD5 of the XLSX is the one third-party
# download scripts pin. The loader also checks the parsed table's published counts.
ONLINE_RETAIL_XLSX = RemoteFile(path="uci-online-retail/Online Retail.xlsx", checksum="md5:8f8e6d94ba88f976f4d8290cb2dea7fd",
                                archive=ONLINE_RETAIL_ZIP, member="Online Retail.xlsx")
# Converted form (offline mirror only): the same table as Parquet.
ONLINE_RETAIL_PARQUET = RemoteFile(
    path="uci-online-retail/online_retail.parquet",
    checksum="sha256:2936604f430c74fc70bcc39a0d1d670ad9f9df4ff19bd10a0f727dc998082650",
    note="This Parquet conversion exists only in the offline mirror; online, the official XLSX is used.",
)

# --- Omniglot (MIT; Lake, Salakhutdinov & Tenenbaum 2015) ------------------------------
OMNIGLOT_ZIPS = {
    split: RemoteFile(path=f"omniglot/official/images_{split}.zip", checksum=digest, url=f"{OMNIGLOT_RAW}/images_{split}.zip")
    for split, digest in {
        "background": "sha256:ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640",
        "evaluation": "sha256:1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee",
    }.items()
}
# Converted form (offline mirror only): lossless NumPy arrays of the same PNGs.
OMNIGLOT_NPZ = {
    split: RemoteFile(path=f"omniglot/images_{split}.npz", checksum=digest,
                      note="The NumPy form exists only in the offline mirror; online, the official zips are used.")
    for split, digest in {
        "background": "sha256:8bf84167413cd00beacdce3fe582f780ab538d8dbef043a6d688f2527bbce199",
        "evaluation": "sha256:0b84c7ffd94c4841c0040e529c86a82eaaccb986d8eadad5673f7991b7475276",
    }.items()
}
OMNIGLOT_CHARACTERS = RemoteFile(
    path="omniglot/characters.csv", checksum="sha256:7a057664d20cc06510d5544466cb4b3a9ec74500ff4059b56f56c0a2e41a35bc",
    note="characters.csv (row -> alphabet, character) accompanies the NumPy form in the offline mirror.",
)

# --- BANKING77 (CC BY 4.0; Casanueva et al. 2020) --------------------------------------
BANKING77 = {
    name: RemoteFile(path=f"banking77/{name}", checksum=digest, url=f"{BANKING77_RAW}/{name}")
    for name, digest in {
        "train.csv": "sha256:b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b",
        "test.csv": "sha256:d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d",
        "categories.json": "sha256:53261da888122daf2d120d925458631d9619e15d82e56052e7a42e535ce32b63",
    }.items()
}

# --- Bitext customer-support sample (CDLA-Sharing-1.0) ---------------------------------
BITEXT = RemoteFile(
    path="bitext-customer-support-sample/Bitext_Sample_Customer_Support_Training_Dataset.csv",
    checksum="sha256:710c8951eebad1bb2959a3d828977f78384960e250178a6028f57d4336091c8d",
    url=f"{BITEXT_RAW}/Bitext_Sample_Customer_Support_Training_Dataset.csv",
)
