"""What every command-line entry point shares: user errors are one line, exit 2."""

import argparse
import sys

from mtl_keras.errors import UserError


def run_main(main, argv=None):
    """Call `main(argv)`; a `UserError` prints `error: <message>` and exits 2, no traceback."""
    try:
        return main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


class ArgumentParser(argparse.ArgumentParser):
    """`argparse`'s parser whose usage errors (an unknown option, `--epochs abc`) read like
    every other user error: one line, `error: ...`, exit 2, instead of the usage block."""

    def error(self, message):
        self.exit(2, f"error: {message} (run with --help for the options)\n")


def study_main(study, doc, out, argv=None):
    """A paired study's command (`study.compare(seeds)` -> rows, untrained figures;
    `study.section(...)` -> its table): `--seeds 0,1,2`, `--out FILE`; writes the table
    with the commit and CPU it was made at, and prints it."""
    from pathlib import Path

    from mtl_keras.provenance import code_commit, cpu_model

    parser = ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default=out)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows, untrained = study.compare(seeds)
    made = f"Made at commit {code_commit()} on {cpu_model().get('cpu_model')}, seeds {seeds}."
    text = f"{made}\n\n{study.section(rows, untrained)}\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
