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
