import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
for sub in ("blog", "test_workflows"):
    path = str(EXAMPLES / sub)
    if path not in sys.path:
        sys.path.insert(0, path)
