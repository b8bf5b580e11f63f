"""Public ids: prefix, length, alphabet, and letters drawn uniformly (one urandom read per id)."""

from collections import Counter

import pytest

from escrow_core import ids
from escrow_core.ids import new_id


def test_an_id_is_its_prefix_and_24_letters_or_digits() -> None:
    made = {new_id("ord") for _ in range(2_000)}
    assert len(made) == 2_000
    for identifier in made:
        prefix, rest = identifier.split("_")
        assert prefix == "ord"
        assert len(rest) == 24
        assert set(rest) <= set(ids._ALPHABET)


def test_every_letter_is_about_equally_likely() -> None:
    counts = Counter("".join(new_id("x")[2:] for _ in range(5_000)))  # 120,000 letters
    assert set(counts) == set(ids._ALPHABET)
    expected = 120_000 / 62
    # chi-square with 61 degrees of freedom: 61 on average, above 120 with p < 1e-5. A modulo
    # bias (bytes 248-255 kept) would put 8 letters ~3 % high: chi-square ~ 150.
    chi_square = sum((n - expected) ** 2 / expected for n in counts.values())
    assert chi_square < 120


def test_dropped_bytes_are_never_letters_and_a_short_draw_reads_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws = iter([bytes([255] * 20 + [0] * 12), bytes([1] * 32)])
    monkeypatch.setattr(ids.secrets, "token_bytes", lambda n: next(draws))
    # 20 dropped bytes, 12 zeros -> "a" * 12, then 12 more from the second read -> "b" * 12.
    assert new_id("ord") == "ord_" + "a" * 12 + "b" * 12
