"""Run every benchmark under bench/ in turn; each prints its table and one closing JSON line.

Exit status is non-zero when any benchmark fails (a failed request, a server that did not start).
"""

import subprocess
import sys
from pathlib import Path

BENCHES = ["api_submit.py", "api_ceiling.py", "order_stages.py", "e2e_latency.py", "ws_fanout.py"]


def main() -> int:
    here = Path(__file__).resolve().parent
    status = 0
    for name in BENCHES:
        print(f"== bench/{name}", flush=True)
        status |= subprocess.call([sys.executable, str(here / name)], cwd=here.parent)
    return status


if __name__ == "__main__":
    sys.exit(main())
