"""The one place where a command's user-facing errors become ``error: ...`` and exit status 1.

Every ``mmredstar`` group and stand-alone command is built with :class:`Group` / :class:`Command`
(``@click.group(cls=Group)``), so a bad config, a missing file or a malformed record raised anywhere
below a command prints one line instead of a traceback, and no command wraps its own body in
``try: ... except ...: raise click.ClickException(str(e))``. ``mmredstar --debug ...`` (or
``MMREDSTAR_DEBUG=1``) lets the exception through with its traceback.

What counts as a user-facing error is :data:`USER_ERRORS`: the project's own errors all derive from
these (``ConfigError``/``RecipeError``/``SpecError``/``DataError`` are ``ValueError``s, ``AssetError``
is a ``FileNotFoundError``, ``TeacherError``/``PipelineError``/``SandboxError`` are ``RuntimeError``s).
Programming errors (``TypeError``, ``KeyError``, ``AttributeError``...) keep their traceback.
"""

from __future__ import annotations

import errno
import os

import click

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError)
DEBUG_KEY = "mmredstar.debug"


class UserError(click.ClickException):
    """A ClickException shown as ``error: MESSAGE`` on stderr (exit status 1)."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=file is None)


def debug_enabled(ctx: click.Context | None) -> bool:
    if os.environ.get("MMREDSTAR_DEBUG", "").strip() not in ("", "0", "false", "no"):
        return True
    return bool(ctx is not None and ctx.meta.get(DEBUG_KEY))


def _invoke(invoke, ctx: click.Context):
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
