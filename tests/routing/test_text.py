"""Russian word-form matching: Snowball stems on both sides, so a keyword matches its forms."""

from __future__ import annotations

import pytest

from app.routing.text import KeywordMatcher, normalize, stems


def test_normalize_casefolds_reads_yo_as_ye_and_keeps_letter_digit_tokens():
    assert normalize("Ёлка, ЯМА-2 на ул. Мира_5!") == ["елка", "яма", "2", "на", "ул", "мира", "5"]
    assert normalize("  ...  ") == []


@pytest.mark.parametrize("text", ["ямы", "яму", "ямой", "ЯМА", "Огромные Ямы на дороге"])
def test_case_forms_of_a_noun_match(text):
    assert KeywordMatcher(["яма"]).matches(text) == "яма"


@pytest.mark.parametrize("text", ["пропал", "пропала", "пропали", "пропавший", "пропавшего"])
def test_verb_and_participle_forms_match_as_far_as_snowball_stems_them_together(text):
    assert KeywordMatcher(["пропал"]).matches(f"Помогите: {text} человек") == "пропал"


def test_stems_are_a_set_of_snowball_stems():
    assert stems("Ямы, ямы и ЯМЫ") == frozenset({"ям", "и"})
    assert stems("") == frozenset()


def test_yo_and_ye_are_the_same_letter_both_ways():
    assert KeywordMatcher(["ёлка"]).matches("упали елки") == "ёлка"
    assert KeywordMatcher(["елка"]).matches("Упала ЁЛКА") == "елка"


def test_multiword_keyword_needs_every_word_in_any_order_and_form():
    matcher = KeywordMatcher(["нет света"])
    assert matcher.matches("В доме света нет с утра") == "нет света"
    assert matcher.matches("Нет воды") is None
    assert matcher.matches("Свет мигает") is None


def test_no_false_positive_for_a_different_word_with_the_same_beginning():
    matcher = KeywordMatcher(["яма"])
    assert matcher.matches("Ямщик гнал лошадей") is None
    assert matcher.matches("Отдых на Ямайке") is None


def test_returns_the_first_keyword_that_matches_as_written():
    matcher = KeywordMatcher(["мусор", "Яма", "выбоина"])
    assert matcher.matches("выбоины и ямы") == "Яма"
    assert matcher.matches("ничего такого") is None


def test_keywords_without_letters_or_digits_are_ignored_not_match_all():
    matcher = KeywordMatcher(["!!!", "  "])
    assert not matcher
    assert matcher.matches("любой текст") is None
    assert KeywordMatcher([]).matches("любой текст") is None


def test_known_limit_fleeting_vowel_forms_do_not_stem_together():
    # Snowball keeps «ребенок» and «ребенка» apart: list both forms in a rule if both matter.
    assert KeywordMatcher(["ребенок"]).matches("потерялся ребёнка") is None
    assert KeywordMatcher(["ребенок", "ребенка"]).matches("потерялся ребёнка") == "ребенка"
