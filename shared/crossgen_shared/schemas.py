"""Write each event's JSON Schema into ``shared/schemas`` (``python -m crossgen_shared.schemas``).

The checked-in files are the published contract; a test fails when a model drifts from its file.
"""

import json
import sys
from pathlib import Path

from crossgen_shared.events import EVENT_CLASSES, json_schema, schema_filename

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def rendered() -> dict[str, str]:
    return {
        schema_filename(cls): json.dumps(json_schema(cls), indent=2, sort_keys=True) + "\n"
        for cls in EVENT_CLASSES
    }


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (target / name).write_text(text)
    print(f"wrote {len(EVENT_CLASSES)} schemas to {target}")


if __name__ == "__main__":
    main()
