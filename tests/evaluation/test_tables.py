"""Evaluation tables: the gain by the labels mixed, which a median over all mixtures can hide."""
from avsep.evaluation.tables import format_label_groups, label_group, label_group_rows


def test_a_group_is_its_labels_in_any_order():
    assert label_group(["violin", "flute"]) == label_group(["flute", "violin"]) == "flute + violin"
    assert label_group(["drum", "cello", "banjo"]) == "banjo + cello + drum"


def test_groups_are_worst_first_with_their_medians_and_counts():
    rows = label_group_rows({"drum + violin": [9.0, 12.0, 15.0], "flute + violin": [-1.0, 0.5, 1.0, 3.0],
                             "drum + flute": [11.0]})
    assert [row["labels"] for row in rows] == ["flute + violin", "drum + flute", "drum + violin"]
    assert [row["SDRi median"] for row in rows] == [0.75, 11.0, 12.0]
    assert [row["sources"] for row in rows] == [4, 1, 3]


def test_the_text_names_every_group_with_its_sign():
    text = format_label_groups(label_group_rows({"flute + violin": [-2.0], "drum + violin": [10.0]}), "players")
    lines = text.splitlines()
    assert lines[0].endswith("(players):") and len(lines) == 3
    assert "flute + violin" in lines[1] and "-2.00 dB" in lines[1] and "(1 players)" in lines[1]
    assert "+10.00 dB" in lines[2]
