"""The README lists every setting, so what an operator reads is what Chorus reads."""

from pathlib import Path

from shared.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [
        f"CHORUS_{name.upper()}"
        for name in Settings.model_fields
        if f"`CHORUS_{name.upper()}`" not in text
    ]
    assert missing == []
