"""The people commands of ``coach``: memory, users, export, forget, purge, share (issue 14, docs/privacy.md).

``register_people(app, out)`` adds them to the main command line; errors are domain errors that
``assistant.cli.main`` turns into one line on stderr. Nothing here decides what is remembered or who may
see what: ``memory``, ``accounts``, ``access`` and ``rights`` do.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import typer

from ..config import load_settings
from ..errors import InputError, check_text
from ..transcripts import LOCAL_USER

USER_HELP = "the person (default: the local user)"
memory_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                         help="What is remembered about a person (their goal and plans, in their own words).")
users_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                        rich_markup_mode=None, help="Accounts for `coach serve` in team mode (docs/privacy.md).")
people_app = typer.Typer()  # holds the top-level commands until ``register_people`` copies them


def _out(obj: Any) -> None:
    _OUT[0](obj)


_OUT: list[Callable[[Any], None]] = [print]


def _settings():
    return load_settings()


def _store():
    from ..transcripts import open_store

    return open_store(_settings())


def _user(store: Any, user: str) -> str:
    from .accounts import Accounts

    return Accounts(store).get(user).id


@memory_app.callback(invoke_without_command=True)
def memory(ctx: typer.Context, user: str = typer.Option(LOCAL_USER, "--user", help=USER_HELP),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """What is remembered about a person; `coach memory forget ITEM_ID` deletes one item."""
    if ctx.invoked_subcommand:
        return
    from .memory import Memory

    store = _store()
    items = [i.public() for i in Memory(store).items(_user(store, user))]
    if as_json:
        _out(items)
        return
    if not items:
        typer.echo(f"nothing is remembered about {user}")
    for i in items:
        typer.echo(f"{i['id']:>5}  {i['kind']:5} {i['status']:9} {i['created_at'][:10]}  {i['text']}")


@memory_app.command("forget")
def memory_forget(item_id: int = typer.Argument(..., help="an item id from `coach memory`"),
                  user: str = typer.Option(LOCAL_USER, "--user", help=USER_HELP)) -> None:
    """Delete one remembered item."""
    from .memory import Memory

    store = _store()
    item = Memory(store).delete(item_id, _user(store, user))
    typer.echo(f"forgot memory item {item.id} ({item.kind})", err=True)


@memory_app.command("correct")
def memory_correct(item_id: int = typer.Argument(...), text: str = typer.Argument(..., help="the item in your words"),
                   user: str = typer.Option(LOCAL_USER, "--user", help=USER_HELP)) -> None:
    """Rewrite one remembered item."""
    from .memory import Memory

    store = _store()
    _out(Memory(store).correct(item_id, check_text(text, "the text"), _user(store, user)).public())


@people_app.command()
def export(user: str = typer.Option(LOCAL_USER, "--user", help=USER_HELP),
           save: bool = typer.Option(False, "--save", help="also keep a copy under DATA_DIR/people/USER/ (forget deletes it)")
           ) -> None:
    """Everything stored about a person, as JSON (sessions, turns, plans, labels, memory)."""
    from .rights import export as export_user
    from .rights import export_to_file

    store = _store()
    uid = _user(store, user)
    _out(export_user(store, uid))
    if save:
        typer.echo(f"saved {export_to_file(store, uid, _settings().data_dir)}", err=True)


@people_app.command()
def forget(user: str = typer.Option(..., "--user", help="the person whose data is deleted"),
           yes: bool = typer.Option(False, "--yes", help="really delete; without it nothing happens"),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Delete everything about a person (transcripts, memory, labels, files, account); prints counts."""
    from .rights import forget as forget_user

    if not yes:
        raise InputError(f"this deletes everything stored about {user!r}; add --yes to do it")
    settings = _settings()
    store = _store()
    deleted = forget_user(store, _user(store, user), files_root=settings.data_dir)
    if as_json:
        _out(deleted)
    else:
        typer.echo("deleted: " + ", ".join(f"{k} {v}" for k, v in deleted.items()))


@people_app.command()
def purge(older_than: float | None = typer.Option(None, "--older-than", min=0,
                                                    help="days without activity (default: COACH_RETENTION_DAYS)"),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Retention: delete people's sessions (and memory items) untouched for DAYS; eval runs are kept."""
    from .rights import purge as purge_old

    settings = _settings()
    days = older_than if older_than is not None else settings.retention_days
    if days is None:
        raise InputError("give --older-than DAYS or set COACH_RETENTION_DAYS")
    deleted = purge_old(_store(), days)
    if as_json:
        _out(deleted)
    else:
        typer.echo(f"purged before {deleted.pop('cutoff')}: " + ", ".join(f"{k} {v}" for k, v in deleted.items()))


@people_app.command()
def share(session: str = typer.Option(..., "--session"), user: str = typer.Option(LOCAL_USER, "--user", help=USER_HELP),
          off: bool = typer.Option(False, "--off", help="stop sharing")) -> None:
    """Let reviewers read one of your sessions in the Review tab (or, with --off, stop)."""
    from .access import set_shared

    store = _store()
    set_shared(store, _user(store, user), session, not off)
    typer.echo(f"session {session} is {'private' if off else 'shared with reviewers'}", err=True)


def _password() -> str:
    """From a hidden prompt (typed twice) on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line.strip():
        raise InputError("no password on stdin (pipe one line, or run on a terminal to be asked)")
    return line.rstrip("\r\n")


@users_app.command("add")
def users_add(name: str = typer.Argument(..., help="the login name (lower-case)"),
              role: str = typer.Option(..., "--role", help="member | reviewer"),
              no_password: bool = typer.Option(False, "--no-password",
                                               help="signs in only through a trusted SSO header")) -> None:
    """Add a person; the password comes from a prompt or stdin and is stored only as a scrypt hash."""
    from .accounts import ROLES, Accounts

    if role not in ROLES:  # before asking for a password
        raise InputError(f"unknown role {role!r}; known roles: {', '.join(ROLES)}")
    user = Accounts(_store()).add(name, role, None if no_password else _password())
    typer.echo(f"added {user.id} ({user.role})", err=True)


@users_app.command("list")
def users_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every account and its role (never a password)."""
    from .accounts import Accounts

    rows = [{"id": u.id, "role": u.role, "created_at": u.created_at, "password": u.has_password}
            for u in Accounts(_store()).all()]
    if as_json:
        _out(rows)
        return
    for r in rows:
        typer.echo(f"{r['id']:24} {r['role']:9} {'password' if r['password'] else '-'}")


@users_app.command("passwd")
def users_passwd(name: str = typer.Argument(...)) -> None:
    """Set a new password (prompt or stdin)."""
    from .accounts import Accounts

    Accounts(_store()).set_password(name, _password())
    typer.echo(f"password changed for {name}", err=True)


def register_people(app: typer.Typer, out: Callable[[Any], None]) -> None:
    """Add the people commands to ``app``; ``out`` prints one JSON line (the CLI's own)."""
    _OUT[0] = out
    app.add_typer(memory_app, name="memory")
    app.add_typer(users_app, name="users")
    app.registered_commands.extend(people_app.registered_commands)
