"""How every command ends on a user's mistake: ``UserError`` and ``run_command``. Free of
MXNet, so that the commands that run without it (``deploy.onnx_predict``) end alike."""
import sys
import traceback

__all__ = ['UserError', 'run_command']


class UserError(Exception):
    """A mistake in what the user gave (a flag, a file, a folder): printed as one line
    ``error: <message>`` with exit status 2, no traceback."""


def run_command(main, argv=None):
    """Run ``main(argv)`` and return its exit status. A user error (``UserError``,
    FileNotFoundError, PermissionError, ValueError, OSError: a missing or unreadable
    file, a bad value) is printed as one line ``error: ...`` on stderr with status 2;
    with ``--debug`` in ``argv`` (or ``sys.argv``) the traceback is shown instead."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return main(argv)
    except (UserError, FileNotFoundError, PermissionError, ValueError, OSError) as err:
        if '--debug' in argv:
            traceback.print_exc()
        else:
            print('error: %s' % err, file=sys.stderr, flush=True)
        return 2
