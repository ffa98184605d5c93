"""Which skill names a program's catalogue lacks, and what it suggests instead, without I/O."""

from crossgen_matching.catalogue import UnknownSkill, outside, unknown_skills

CATALOGUE = ["ai tools", "figma", "tiktok"]


def test_without_a_catalogue_any_name_goes() -> None:
    assert unknown_skills(["tik tok", "cobol"], None) == []
    assert unknown_skills(["tik tok"], []) == []


def test_each_unknown_name_comes_with_the_closest_known_one() -> None:
    assert unknown_skills(["tiktok", "tik tok", "figmaa", "ai tools"], CATALOGUE) == [
        UnknownSkill("tik tok", "tiktok"),
        UnknownSkill("figmaa", "figma"),
    ]


def test_a_name_like_none_of_the_catalogue_has_no_suggestion() -> None:
    [unknown] = unknown_skills(["quantum chemistry"], CATALOGUE)
    assert unknown == UnknownSkill("quantum chemistry", None)
    assert str(unknown) == "unknown skill 'quantum chemistry'"


def test_an_unknown_skill_says_what_it_may_have_meant() -> None:
    assert (
        str(UnknownSkill("tik tok", "tiktok")) == "unknown skill 'tik tok' (did you mean 'tiktok'?)"
    )


def test_outside_keeps_the_order_given() -> None:
    assert outside(["cobol", "figma", "excel"], CATALOGUE) == ["cobol", "excel"]
    assert outside(["cobol"], None) == []
