"""Start-up (issue 19): a command imports only what it uses. Behaviour tests (which modules
a run imports; converters that give typer's results), not timings: those are in
scripts/bench_startup.py."""

from __future__ import annotations

import enum
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pstkit.cli import fastparams, registry
from tests.helpers import REPO, cli

CORPUS_PST = REPO.parent / "shared" / "corpus" / "pst" / "dist-list.pst"

#: never needed to answer --version
HEAVY = ("typer", "click", "pydantic", "rich", "tqdm", "cryptography", "exchangelib", "msal",
         "httpx", "celery", "kombu", "redis", "pypff", "imapclient", "lxml",
         "pstkit.converters", "pstkit.store", "pstkit.cli.run")  # fmt: skip
#: not needed by `export pst:FILE STORE` without a terminal (typer is, so is the PST reader)
NOT_FOR_EXPORT = ("pydantic", "rich", "tqdm", "cryptography", "exchangelib", "msal", "httpx",
                  "celery", "kombu", "redis", "imapclient", "lxml", "pstkit.seal",
                  "pstkit.cli.seal", "pstkit.secrets",
                  "pstkit.cli.verifycmd", "pstkit.cli.reportcmd", "pstkit.report.html",
                  "pstkit.batch.engine", "multiprocessing", "tomllib",
                  "pstkit.verify", "pstkit.itemfields", "pstkit.batch", "pstkit.cli.batchcmds",
                  "pstkit.cli.batchreport", "pstkit.cli.checkreport", "pstkit.check",
                  "pstkit.cli.dryrun", "pstkit.importing",
                  "pstkit.config")  # fmt: skip
#: what only contacts, lists, calendar items and tasks need (the vCard/iCalendar writers)
PIM_ONLY = ("pstkit.converters.pst.ical", "pstkit.converters.pst.cards", "pstkit.converters.pim")
MAIL_ONLY_PST = CORPUS_PST.with_name("attachAndInline.pst")


def _imported(*args: str, cwd: Path = REPO) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run pstkit in a child; the names of the modules it imported (printed at exit)."""
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print('MODULES', ' '.join(sys.modules), file=sys.stderr))\n"
             "from pstkit.cli import main\nmain()")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    return done, set(line.split()[1:])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


def test_version_imports_nothing_heavy() -> None:
    done, modules = _imported("--version")
    assert done.returncode == 0 and done.stdout.startswith("pstkit ")
    assert "C twins of the PST reader" in done.stdout  # found without importing converters
    assert _loaded(modules, HEAVY) == []


def test_a_pst_export_imports_only_what_it_uses(tmp_path: Path) -> None:
    if not CORPUS_PST.is_file():
        pytest.skip(f"no corpus PST at {CORPUS_PST} (see ../shared/corpus/README.md)")
    done, modules = _imported("export", f"pst:{CORPUS_PST}", str(tmp_path / "store"))
    assert done.returncode == 0, done.stderr
    assert "exported from" in done.stdout
    assert _loaded(modules, NOT_FOR_EXPORT) == []
    assert "pstkit.converters.pst.source" in modules  # the probe does see what is used
    assert _loaded(modules, PIM_ONLY) == sorted(PIM_ONLY)  # a distribution list needs them


def test_a_pst_of_plain_mail_needs_no_vcard_or_icalendar_writer(tmp_path: Path) -> None:
    if not MAIL_ONLY_PST.is_file():
        pytest.skip(f"no corpus PST at {MAIL_ONLY_PST} (see ../shared/corpus/README.md)")
    done, modules = _imported("export", f"pst:{MAIL_ONLY_PST}", str(tmp_path / "store"))
    assert done.returncode == 0, done.stderr
    assert _loaded(modules, PIM_ONLY) == []
    assert "pstkit.converters.pst.named" in modules


#: the PST reader's records that stay dataclasses on a mail export: compared by tests, or
#: shared with the writer; every other record of the reader is a plain class, because
#: making a dataclass costs ~0.3-0.6 ms at import (notes/19-startup5.md)
PST_DATACLASSES = {"mime.Address", "mime.Attachment", "mime.Body", "mime.MapiMessage",
                   "nodes.RawAttachment", "props.Props"}


def test_a_pst_export_makes_only_the_reader_dataclasses_it_needs(tmp_path: Path) -> None:
    if not MAIL_ONLY_PST.is_file():
        pytest.skip(f"no corpus PST at {MAIL_ONLY_PST} (see ../shared/corpus/README.md)")
    pst = "pstkit.converters.pst."
    probe = ("import atexit, dataclasses, sys\n"
             "def made():\n"
             "    found = {f'{n[len(P):]}.{k}' for n, m in list(sys.modules.items())\n"
             "             if n.startswith(P) for k, v in vars(m).items()\n"
             "             if isinstance(v, type) and dataclasses.is_dataclass(v)\n"
             "             and v.__module__ == n}\n"
             "    print('MADE', ' '.join(sorted(found)), file=sys.stderr)\n"
             f"P = {pst!r}\n"
             "atexit.register(made)\n"
             "from pstkit.cli import main\nmain()")  # fmt: skip
    args = ["export", f"pst:{MAIL_ONLY_PST}", str(tmp_path / "store")]
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("MADE "))
    assert set(line.split()[1:]) == PST_DATACLASSES


def test_the_import_stage_is_still_found_through_the_pipeline() -> None:
    # The other side of "pstkit.importing" in NOT_FOR_EXPORT: loaded when asked for.
    from pstkit import importing, pipeline  # noqa: PLC0415 - the order is the test

    assert pipeline.import_ is importing.import_
    assert "import_" in pipeline.__all__
    with pytest.raises(AttributeError):
        _ = pipeline.no_such_name  # type: ignore[attr-defined]


def test_a_batch_export_still_finds_its_batch_code(tmp_path: Path) -> None:
    # The other side of NOT_FOR_EXPORT: --batch imports the batch code it needs.
    users = tmp_path / "users.csv"
    users.write_text("EmailAddress,UserName,Password\n", encoding="utf-8")
    done, modules = _imported("export", "--batch", str(users), str(tmp_path / "stores"))
    assert "pstkit.batch.csvfiles" in modules and "pstkit.cli.batchcmds" in modules, done.stderr


#: prints every command's help and every parameter typer built (vars, type descriptor)
_BUILT = """
import sys, typer
from pstkit.cli import fastparams, registry
fastparams.install()
if sys.argv[1] == "strings":
    registry.resolve_annotations = lambda func: None
def show(command, path, parent):
    ctx = typer.Context(command, info_name=path[-1], parent=parent)
    print("COMMAND", " ".join(path), command.get_help(ctx))
    for p in command.params:
        seen = sorted((k, repr(v)) for k, v in vars(p).items() if k != "type_descriptor")
        td = p.type_descriptor
        print("PARAM", seen, td.annotation, sorted(vars(td.parameter_info).items()))
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        show(sub, [*path, name], ctx)
show(typer.main.get_command(registry.app_for(None)), ["pstkit"], None)
"""


def test_evaluated_annotations_build_the_same_commands() -> None:
    # registry.resolve_annotations hands typer evaluated annotations instead of strings:
    # every command, its help and every parameter must come out exactly as typer built
    # them from the strings (object addresses aside).
    def built(mode: str) -> str:
        done = subprocess.run([sys.executable, "-c", _BUILT, mode], cwd=REPO,
                              capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
        return re.sub(r" at 0x[0-9a-f]+", "", done.stdout)

    strings, evaluated = built("strings"), built("evaluated")
    assert strings.count("COMMAND ") >= len(registry.MODULES) and strings.count("PARAM ") > 150
    assert evaluated == strings


def test_the_registry_names_every_command() -> None:
    # A command missing from registry.MODULES would still run (all are built then), slowly.
    assert registry.registered() == set(registry.MODULES) | {"help"}


def test_only_the_command_that_runs_is_built_unless_all_are_needed(tmp_path: Path) -> None:
    assert registry.wanted(["--json", "ls", "S"], {"XDG_CONFIG_HOME": str(tmp_path)}) == "ls"
    (tmp_path / "pstkit").mkdir()
    (tmp_path / "pstkit" / "config.toml").write_text("[defaults]\n", encoding="utf-8")
    assert registry.wanted(["ls", "S"], {"XDG_CONFIG_HOME": str(tmp_path)}) is None
    completing = {"XDG_CONFIG_HOME": "/nonexistent", "_PSTKIT_COMPLETE": "x"}
    assert registry.wanted(["ls"], completing) is None
    # An unknown name builds all, so click can suggest the right one.
    code, _, err = cli("exprot", "a", "b")
    assert code == 2 and "Did you mean 'export'?" in err


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class _Info:
    """The ParameterInfo fields the converters read."""

    def __init__(self, **kw: Any) -> None:
        self.parser = self.click_type = self.path_type = self.min = self.max = None
        self.clamp = False
        self.case_sensitive = True
        self.exists = self.allow_dash = self.resolve_path = False
        self.file_okay = self.dir_okay = self.readable = True
        self.writable = False
        self.__dict__.update(kw)


CASES: list[tuple[Any, Any]] = [
    (str, "x"), (str, ""), (str, "ü ß"), (bool, True), (bool, "yes"), (bool, "Off"),
    (int, "4"), (int, "-3"), (int, 7), (int, "007"), (float, "1.5"), (float, "2"),
    (list[str], ("a", "b")), (list[str], []), (Color, "red"), (Color, Color.BLUE),
    (Path, "a/b.pst"), (Path, Path("x")), (Path, "~/m"),
]  # fmt: skip


@pytest.mark.parametrize(("annotation", "value"), CASES)
def test_the_plain_converters_give_typer_s_results(annotation: Any, value: Any) -> None:
    from typer._coercion import build_runtime_param, resolve_type_descriptor  # noqa: PLC0415
    from typer.models import OptionInfo  # noqa: PLC0415

    info = OptionInfo()
    convert = fastparams._converter(annotation, info)
    assert convert is not None
    param = _Param(resolve_type_descriptor(annotation, info))
    typers: Any = build_runtime_param(param.type_descriptor)
    theirs = typers._coerce_value(value, param=param, ctx=None)
    ours = convert(value, param, None)
    assert ours == theirs and type(ours) is type(theirs)


class _Param:
    multiple, nargs, name = False, 1, "x"

    def __init__(self, descriptor: Any) -> None:
        self.type_descriptor = descriptor


def test_an_unusual_value_goes_to_typer_and_keeps_its_message(tmp_path: Path) -> None:
    with pytest.raises(fastparams._Slow):
        fastparams._converter(int, _Info())("4x", None, None)
    with pytest.raises(fastparams._Slow):
        fastparams._converter(int, _Info(min=1))("0", None, None)
    code, _, err = cli("export", "maildir:/nonexistent", str(tmp_path / "s"), "--connections", "x")
    assert code == 2 and "--connections" in err and "valid integer" in err
