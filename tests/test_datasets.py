from pathlib import Path

import pytest

from kiosk.datasets import identity_images, read_pairs
from kiosk.errors import DatasetError


def test_pairs_csv_accepts_one_zero_and_true_false(tmp_path: Path) -> None:
    csv = tmp_path / "pairs.csv"
    csv.write_text("img1,img2,same\na.jpg,b.jpg,1\na.jpg,c.jpg,false\nb.jpg,c.jpg,TRUE\n")
    rows = read_pairs(csv, tmp_path / "imgs")
    assert [r[2] for r in rows] == [True, False, True]
    assert rows[0][0] == tmp_path / "imgs" / "a.jpg"


@pytest.mark.parametrize(
    ("text", "message"),
    [("a,b,c\n1,2,3\n", "header"), ("img1,img2,same\na,b,maybe\n", "1/0 or true/false"), ("img1,img2,same\n", "no pairs")],
)
def test_malformed_pairs_csv_is_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    csv = tmp_path / "pairs.csv"
    csv.write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_pairs(csv, tmp_path)


def test_identity_folders_skip_duplicate_photos(tmp_path: Path) -> None:
    for folder in ("train/ann", "val/ann", "train/bob"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "train/ann/1.jpg").write_bytes(b"one")
    (tmp_path / "val/ann/1.jpg").write_bytes(b"one")
    (tmp_path / "train/bob/2.jpg").write_bytes(b"two")
    assert [label for label, _ in identity_images(tmp_path)] == ["ann", "bob"]
