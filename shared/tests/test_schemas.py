from crossgen_shared.schemas import SCHEMA_DIR, rendered


def test_checked_in_schemas_match_the_models() -> None:
    expected = rendered()
    on_disk = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.json")}
    stale = sorted(name for name in expected if on_disk.get(name) != expected[name])
    extra = sorted(set(on_disk) - set(expected))
    assert not stale and not extra, (
        f"schemas drifted (stale: {stale}, unknown: {extra}); "
        "run `python -m crossgen_shared.schemas` and commit shared/schemas"
    )
