"""Entry point of the ``sklcifar`` command and of ``python -m sklcifar``.

TensorFlow's C++ runtime writes start-up lines straight to the process's stderr when it is
imported (the oneDNN notice among them, whatever ``TF_CPP_MIN_LOG_LEVEL`` says), and every
subcommand imports it. A command line should print its own output only, so TensorFlow is
imported here first with stderr captured; what it wrote is shown only if the import fails.
"""

from __future__ import annotations

import os
import sys
import tempfile


def _import_tensorflow_quietly() -> None:
    # The C++ INFO lines TensorFlow logs later, while running, are noise on a command line.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved_stderr, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)


def main() -> int:
    """Run the ``sklcifar`` command line on ``sys.argv[1:]``; return its exit status."""
    _import_tensorflow_quietly()
    from .cli import main as run_command_line

    return run_command_line()


if __name__ == "__main__":
    sys.exit(main())
