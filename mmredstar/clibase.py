"""The one place where a command's user-facing errors become ``error: ...`` and exit status 1.

Every ``mmredstar`` group and stand-alone command is built with :class:`Group` / :class:`Command`
(``@click.group(cls=Group)``), so a bad config, a missing file or a malformed record raised anywhere
below a command prints one line instead of a traceback, and no command wraps its own body in
``try: ... except ...: raise click.ClickException(str(e))``. ``mmredstar --debug ...`` (or
``MMREDSTAR_DEBUG=1``) lets the exception through with its traceback.

Messages: the package logs through ``logging.getLogger("mmredstar.<module>")`` and, as a library, has only a
``NullHandler`` (a Python caller configures logging as they like). A command run through these classes
installs one :class:`EchoHandler` on the ``mmredstar`` logger for its duration: each message is written as
its bare text to stderr (``click.echo(err=True)``, through ``tqdm.write`` when tqdm is loaded so bars stay
whole), at INFO, or WARNING with ``mmredstar --quiet``, DEBUG with ``--verbose``.

What counts as a user-facing error is :data:`USER_ERRORS`: the project's own errors all derive from
these (``ConfigError``/``RecipeError``/``SpecError``/``DataError`` are ``ValueError``s, ``AssetError``
is a ``FileNotFoundError``, ``TeacherError``/``PipelineError``/``SandboxError`` are ``RuntimeError``s; an
``ImportError`` names an optional dependency that is not installed).
Programming errors (``TypeError``, ``KeyError``, ``AttributeError``...) keep their traceback.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys

import click

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError, ImportError)
DEBUG_KEY = "mmredstar.debug"
LOG_KEY = "mmredstar.log_handler"


class UserError(click.ClickException):
    """A ClickException shown as ``error: MESSAGE`` on stderr (exit status 1)."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=file is None)


def debug_enabled(ctx: click.Context | None) -> bool:
    if os.environ.get("MMREDSTAR_DEBUG", "").strip() not in ("", "0", "false", "no"):
        return True
    return bool(ctx is not None and ctx.meta.get(DEBUG_KEY))


class EchoHandler(logging.Handler):
    """Writes each record's message, bare, to the current stderr (what ``print(..., file=sys.stderr)`` did)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            tqdm = sys.modules.get("tqdm")
            if tqdm is not None and hasattr(tqdm, "tqdm"):
                tqdm.tqdm.write(msg, file=sys.stderr)
            else:
                click.echo(msg, err=True)
        except Exception:                       # logging's own convention: never raise from a handler
            self.handleError(record)


@contextlib.contextmanager
def cli_logging(ctx: click.Context):
    """The outermost command installs the handler (and INFO level) on ``mmredstar``; nested ones reuse it."""
    if ctx.meta.get(LOG_KEY) is not None:
        yield
        return
    logger = logging.getLogger("mmredstar")
    handler = EchoHandler()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    ctx.meta[LOG_KEY] = handler
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        ctx.meta.pop(LOG_KEY, None)


def set_verbosity(ctx: click.Context, quiet: bool = False, verbose: int = 0) -> None:
    """``--quiet``: warnings and errors only; ``--verbose``: debug messages too."""
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose contradict each other; give one")
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.getLogger("mmredstar").setLevel(level)


def _invoke(invoke, ctx: click.Context):
    with cli_logging(ctx):
        return _invoke_inner(invoke, ctx)


def _invoke_inner(invoke, ctx: click.Context):
    try:
        return invoke(ctx)
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise                                   # click's own control flow (Exit/Abort are RuntimeErrors)
    except USER_ERRORS as e:
        if debug_enabled(ctx):
            raise
        raise UserError(_message(e)) from None


# what to do about an OS error on a path (the message names the path first)
_OS_HINTS = {
    errno.ENOTDIR: "a part of this path is an existing file, not a directory; choose another path",
    errno.EEXIST: "an existing file is in the way of a directory; move it or choose another path",
    errno.EISDIR: "this is a directory; give a file name",
    errno.EACCES: "no permission; choose a writable location or change its permissions",
    errno.EPERM: "not permitted; choose a writable location or change its permissions",
    errno.EROFS: "a read-only file system; choose a writable location",
    errno.ENOSPC: "the disk is full; free space or choose another location",
}


def _message(e: BaseException) -> str:
    """The one line shown for a user error; an OS error on a path says which path and what to do."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror and not isinstance(e, FileNotFoundError):
        hint = _OS_HINTS.get(e.errno)
        return f"{e.filename}: {e.strerror}" + (f" ({hint})" if hint else "")
    return str(e) or type(e).__name__


class Command(click.Command):
    """A stand-alone command whose user-facing errors print ``error: ...`` (see the module doc)."""

    def invoke(self, ctx: click.Context):
        return _invoke(super().invoke, ctx)


class Group(click.Group):
    """A command group; every sub-command run through it gets the same error handling."""

    command_class = Command

    def invoke(self, ctx: click.Context):
        return _invoke(super().invoke, ctx)


Group.group_class = Group
