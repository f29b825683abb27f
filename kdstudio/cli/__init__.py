"""The ``kdstudio`` command: thin argument parsing over the core jobs.

Exit status: 0 success, 2 bad input or usage (one line on stderr), 1 internal error,
130 cancelled (Ctrl-C; everything finished so far is kept). ``--json`` prints one JSON object
on stdout and nothing else; progress goes to stderr.

The package: ``output`` (progress and results), ``commands`` (one function per command),
``parser`` (the flags). ``main`` is the entry point.
"""

from __future__ import annotations

import difflib
import os
import signal
import sys
from pathlib import Path

from kdstudio.cli.commands import COMMANDS
from kdstudio.cli.parser import build_parser
from kdstudio.core.errors import Cancelled, KDStudioError, disk_full
from kdstudio.core.events import CancelToken

__all__ = ["COMMANDS", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        if argv and not Path(argv[0]).is_file():  # neither a command nor a project: a usage error, no window
            close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
            hint = f" (did you mean `kdstudio {close[0]}`?)" if close else "; see kdstudio --help"
            print(f"kdstudio: error: {argv[0]!r} is neither a command nor a project file{hint}", file=sys.stderr)
            return 2
        from kdstudio.core.doctor import window_blocker

        blocker = window_blocker()
        if blocker:
            print(f"kdstudio: cannot open the window: {blocker}", file=sys.stderr)
            return 1
        from kdstudio.gui.app import main as gui_main

        return gui_main(argv[:1])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    cancel = CancelToken()

    def interrupt(signum, frame):  # first Ctrl-C: stop cleanly; second: stop now
        if cancel.cancelled:
            raise KeyboardInterrupt
        print("\nstopping… (press Ctrl-C again to force)", file=sys.stderr)
        cancel.cancel()

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        return args.func(args, cancel)
    except Cancelled:
        print("kdstudio: cancelled; everything finished so far is kept", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("kdstudio: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KDStudioError as exc:
        print(f"kdstudio: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # an internal error: one line, the traceback on request
        if disk_full(exc):  # not a bug: say what to do
            print(f"kdstudio: error: the disk is full ({exc}); free some space and run it again", file=sys.stderr)
            return 2
        if os.environ.get("KDSTUDIO_DEBUG"):
            raise
        print(f"kdstudio: internal error: {type(exc).__name__}: {exc} (set KDSTUDIO_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    raise SystemExit(main())
