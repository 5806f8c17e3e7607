"""What every command-line entry point shares: user errors are one line, exit 2."""

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
