"""zs-sweep COMMAND [ARGS ...]: one console command for every command line (``python -m sweep.COMMAND`` works too).

  zs-sweep run SPACE.yaml [key=value ...]     a search as Ray Tune trials (sweep.run)
  zs-sweep heads --model PATH [PATH ...]      every layer x head of each model (sweep.heads)
  zs-sweep predict --model PATH --method M    word scores of one method (sweep.predict)
  zs-sweep evaluate --preds P.tsv --gold G    the token metrics of a word-score file (sweep.evaluate)
  zs-sweep report OUT                         one HTML page of sweep and head-scan outputs (sweep.report)

Every command takes --help and --smoke-test (a tiny run that needs no other argument).
"""
from __future__ import annotations

import importlib
import sys

from sweep import common

COMMANDS = {"run": "sweep.run", "heads": "sweep.heads", "predict": "sweep.predict", "evaluate": "sweep.evaluate",
            "report": "sweep.report"}


def main(argv: list[str] | None = None) -> int:
    common.FROM_SHELL = argv is None  # the console command, not a call: end at once when interrupted
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else common.EXIT_BAD_INPUT
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: zs-sweep {name}: unknown command; expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return common.EXIT_BAD_INPUT
    common.INVOKED_AS = "zs-sweep {}"
    module = importlib.import_module(COMMANDS[name])  # one of five known module names, never the user's text
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
