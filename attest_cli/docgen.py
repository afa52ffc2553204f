"""Generate shell completions (bash, zsh, fish) and the man page from the CLI itself.

Static scripts rather than click's call-back-into-the-program completion: a tab press
costs nothing (no Python start-up), and configuration key names complete too. ``make docs``
regenerates them; a test fails when the committed files differ from what this produces.

Usage: ``python -m attest_cli.docgen completions man [--out DIR]`` (default: attest_cli/data,
which the wheel ships; the top-level completions/ and man/ are symlinks to it).
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest_cli import __version__

ROOT = Path(__file__).resolve().parent.parent
# where `make docs` writes: inside the package, so that the wheel ships the files
DATA = Path(__file__).resolve().parent / "data"


@dataclass
class CommandInfo:
    path: tuple[str, ...]
    help: str
    options: list[tuple[list[str], str, list[str], bool]] = field(default_factory=list)
    # (flags, help, choices, takes_value)
    arguments: list[str] = field(default_factory=list)
    subcommands: list[str] = field(default_factory=list)
    argument_choices: list[str] = field(default_factory=list)  # e.g. `completion SHELL`


def command_tree() -> list[CommandInfo]:
    """Every command and group, depth first, with options and their choices."""
    from attest_cli.cli.app import click_command

    root = click_command()
    out: list[CommandInfo] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        info = CommandInfo(path=path, help=(cmd.help or "").strip().split("\n")[0])
        for param in cmd.params:
            if param.param_type_name == "option":
                if getattr(param, "hidden", False):
                    continue
                flags = [*param.opts, *param.secondary_opts]
                choices = _choices(param)
                takes = not (param.is_flag or param.count)
                info.options.append((flags, (param.help or "").strip(), choices, takes))
            else:
                info.arguments.append((param.metavar or param.name).upper())
                info.argument_choices += _choices(param)
        info.options.append((["-h", "--help"], "Show the help and exit.", [], False))
        subs = getattr(cmd, "commands", None)
        if subs:
            info.subcommands = list(subs)
        out.append(info)
        for name, sub in (subs or {}).items():
            walk(sub, (*path, name))

    walk(root, ())
    return out


def _choices(param: Any) -> list[str]:
    """An option's allowed values: an Enum annotation (typer) or a click Choice type."""
    import enum

    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(m.value) for m in annotation]
    return [str(c) for c in getattr(getattr(param, "type", None), "choices", None) or []]


def _config_keys() -> list[str]:
    from attest_cli.config.schema import KEYS

    return list(KEYS)


def _value_flags(tree: list[CommandInfo]) -> dict[str, list[tuple[str, list[str]]]]:
    """Each flag that takes one of a set of values -> [(command path, values)].

    One shell ``case`` arm per flag that branches on the command: ``--format`` means
    different values for ``run``, ``verify`` and ``history``, and a shell runs only the first
    arm that matches.
    """
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for info in tree:
        for flags, _h, choices, takes in info.options:
            if takes and choices:
                for flag in flags:
                    out.setdefault(flag, []).append((" ".join(info.path), choices))
    return out


def _subcommand_walk(tree: list[CommandInfo], var: str) -> list[str]:
    """``case`` arms (shared by bash and zsh) that track the command path typed so far."""
    arms = []
    for info in tree:
        for sub in info.subcommands:
            typed = " ".join(info.path)
            arms.append(f"            \"{typed} {sub}\") {var}=\"{' '.join((*info.path, sub))}\" ;;"
                        if info.path else f"            \" {sub}\") {var}=\"{sub}\" ;;")
    return arms


# Commands whose positional arguments are step names (`attest run build test`).
STEP_ARGUMENT_COMMANDS = (("run",), ("cache", "explain"))
CONFIG_KEY_COMMANDS = (("config", "get"), ("config", "set"), ("config", "unset"))

# Step names of a pipeline file, read by awk at each tab press: no Python start-up, no YAML
# library. It reads the block mapping under a top-level `steps:` key (the form `attest init`
# writes and the docs use), keys quoted or not; a flow mapping (`steps: {a: ...}`) completes
# nothing. One program for the three shells: it holds no single quote (the shells' quoting)
# and no double backslash (fish's single quotes); `q` is passed in as a single quote.
STEP_NAMES_AWK = (
    '/^steps:[ \\t]*(#.*)?\\r?$/ { s = 1; ind = 0; next } '
    's && /^[^ \\t#\\r]/ { s = 0 } '
    's && /^[ \\t]+[^ \\t#\\r-]/ { k = $0; sub(/^[ \\t]+/, "", k); n = length($0) - length(k); '
    'if (!ind) ind = n; if (n != ind) next; sub(/[ \\t]*:([ \\t].*)?\\r?$/, "", k); '
    'c = substr(k, 1, 1); if (c == q || c == "\\"") k = substr(k, 2, length(k) - 2); '
    'if (k ~ /^[^ \\t]+$/) print k }'
)


def _value_takers(tree: list[CommandInfo], path: tuple[str, ...]) -> list[str]:
    """The flags of ``path`` that take a value (the next word is theirs, not a step name)."""
    info = next(t for t in tree if t.path == path)
    return [f for flags, _h, _c, takes in info.options if takes for f in flags]


def _config_value_choices() -> dict[str, list[str]]:
    """Config key -> the values ``config set KEY`` completes (enums and booleans)."""
    from attest_cli.config.schema import KEYS

    out: dict[str, list[str]] = {}
    for name, key in KEYS.items():
        if key.kind == "enum":
            out[name] = list(key.choices)
        elif key.kind == "bool":
            out[name] = ["true", "false"]
    return out


def bash(tree: list[CommandInfo]) -> str:
    lines = ["# bash completion for attest (generated by `make docs`; do not edit)",
             "_attest_steps() {",
             "    # step names of the pipeline file on the line (-p FILE, -C DIR) or attest.yaml",
             "    local file=\"\" dir=\".\" i",
             "    for ((i = 1; i < COMP_CWORD; i++)); do",
             "        case \"${COMP_WORDS[i]}\" in",
             "            -p|--pipeline) file=\"${COMP_WORDS[i+1]}\" ;;",
             "            -C|--working-dir) dir=\"${COMP_WORDS[i+1]}\" ;;",
             "        esac",
             "    done",
             "    [[ -z \"$file\" ]] && file=attest.yaml",
             "    [[ \"$file\" != /* ]] && file=\"$dir/$file\"",
             "    [[ -f \"$file\" ]] || return 0",
             f"    awk -v q=\"'\" '{STEP_NAMES_AWK}' \"$file\" 2>/dev/null",
             "}",
             "_attest() {",
             "    local cur prev path w i",
             "    cur=\"${COMP_WORDS[COMP_CWORD]}\"",
             "    prev=\"${COMP_WORDS[COMP_CWORD-1]}\"",
             "    path=\"\"",
             "    for ((i = 1; i < COMP_CWORD; i++)); do",
             "        w=\"${COMP_WORDS[i]}\"",
             "        case \"$path $w\" in"]
    lines += _subcommand_walk(tree, "path")
    lines += ["        esac", "    done", "    case \"$prev\" in",
              "        --step) COMPREPLY=($(compgen -W \"$(_attest_steps)\" -- \"$cur\"));"
              " return ;;"]
    for flag, uses in _value_flags(tree).items():
        lines.append(f"        {flag}) case \"$path\" in")
        for path, choices in uses:
            lines.append(f"            \"{path}\") COMPREPLY=($(compgen -W \"{' '.join(choices)}\""
                         " -- \"$cur\")); return ;;")
        lines.append("        esac ;;")
    lines += ["    esac", "    case \"$path\" in", "        \"config set\") case \"$prev\" in"]
    for key, values in _config_value_choices().items():
        lines.append(f"            {key}) COMPREPLY=($(compgen -W \"{' '.join(values)}\""
                     " -- \"$cur\")); return ;;")
    lines += ["        esac ;;", "    esac", "    if [[ \"$cur\" != -* ]]; then",
              "        case \"$path\" in"]
    for command in STEP_ARGUMENT_COMMANDS:
        takers = "|".join(_value_takers(tree, command))
        lines.append(f"            \"{' '.join(command)}\") case \"$prev\" in {takers}) ;; *) "
                     "COMPREPLY=($(compgen -W \"$(_attest_steps)\" -- \"$cur\")); return ;; "
                     "esac ;;")
    lines += ["        esac", "    fi", "    case \"$path\" in"]
    keys = " ".join(_config_keys())
    for info in tree:
        # a word not starting with `-` completes to subcommands, argument values or config
        # keys when the command has any; options otherwise (and always after a `-`)
        options = " ".join(f for flags, _h, _c, _t in info.options for f in flags)
        words = info.subcommands + info.argument_choices
        if info.path in CONFIG_KEY_COMMANDS:
            words += keys.split()
        pick = (f"[[ \"$cur\" == -* ]] && w=\"{options}\" || w=\"{' '.join(words)}\"; "
                if words else f"w=\"{options}\"; ")
        lines.append(f"        \"{' '.join(info.path)}\") {pick}"
                     "COMPREPLY=($(compgen -W \"$w\" -- \"$cur\"));"
                     " [[ ${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- \"$cur\")) ;;")
    lines += ["    esac", "}", "complete -o default -F _attest attest", ""]
    return "\n".join(lines)


def zsh(tree: list[CommandInfo]) -> str:
    lines = ["#compdef attest",
             "# zsh completion for attest (generated by `make docs`; do not edit)",
             "_attest_steps() {",
             "    # step names of the pipeline file on the line (-p FILE, -C DIR) or attest.yaml",
             "    local file_=\"\" dir_=\".\" i",
             "    for ((i = 2; i < CURRENT; i++)); do",
             "        case \"${words[i]}\" in",
             "            -p|--pipeline) file_=\"${words[i+1]}\" ;;",
             "            -C|--working-dir) dir_=\"${words[i+1]}\" ;;",
             "        esac",
             "    done",
             "    [[ -z \"$file_\" ]] && file_=attest.yaml",
             "    [[ \"$file_\" != /* ]] && file_=\"$dir_/$file_\"",
             "    [[ -f \"$file_\" ]] || return 0",
             f"    awk -v q=\"'\" '{STEP_NAMES_AWK}' \"$file_\" 2>/dev/null",
             "}",
             "_attest() {", "    local -a words_; local path_ w i prev_ cur_", "    path_=\"\"",
             "    prev_=\"${words[CURRENT-1]}\"; cur_=\"${words[CURRENT]}\"",
             "    for ((i = 2; i < CURRENT; i++)); do", "        w=\"${words[i]}\"",
             "        case \"$path_ $w\" in"]
    lines += _subcommand_walk(tree, "path_")
    lines += ["        esac", "    done", "    case \"$prev_\" in",
              "        --step) compadd -- ${(f)\"$(_attest_steps)\"}; return ;;"]
    for flag, uses in _value_flags(tree).items():
        lines.append(f"        {flag}) case \"$path_\" in")
        for path, choices in uses:
            lines.append(f"            \"{path}\") compadd -- {' '.join(choices)}; return ;;")
        lines.append("        esac ;;")
    lines += ["    esac", "    case \"$path_\" in", "        \"config set\") case \"$prev_\" in"]
    for key, values in _config_value_choices().items():
        lines.append(f"            {key}) compadd -- {' '.join(values)}; return ;;")
    lines += ["        esac ;;", "    esac", "    if [[ \"$cur_\" != -* ]]; then",
              "        case \"$path_\" in"]
    for command in STEP_ARGUMENT_COMMANDS:
        takers = "|".join(_value_takers(tree, command))
        lines.append(f"            \"{' '.join(command)}\") case \"$prev_\" in {takers}) ;; *) "
                     "compadd -- ${(f)\"$(_attest_steps)\"}; return ;; esac ;;")
    lines += ["        esac", "    fi", "    case \"$path_\" in"]
    keys = " ".join(_config_keys())
    for info in tree:
        descs = []
        for sub in info.subcommands:
            sub_info = next(t for t in tree if t.path == (*info.path, sub))
            descs.append(f"'{sub}:{_zq(sub_info.help)}'")
        opts = " ".join(f for flags, _h, _c, _t in info.options for f in flags)
        extra = f" {keys}" if info.path in CONFIG_KEY_COMMANDS else ""
        extra += "".join(f" {c}" for c in info.argument_choices)
        body = ""
        if descs:
            body += f"words_=({' '.join(descs)}); _describe 'command' words_; "
        body += f"compadd -- {opts}{extra}; _files"
        lines.append(f"        \"{' '.join(info.path)}\") {body} ;;")
    lines += ["    esac", "}", "_attest \"$@\"", ""]
    return "\n".join(lines)


def _zq(text: str) -> str:
    return text.replace("'", "").replace(":", " -")[:70]


def fish(tree: list[CommandInfo]) -> str:
    lines = ["# fish completion for attest (generated by `make docs`; do not edit)",
             "function __attest_steps",
             "    # step names of the pipeline file on the line (-p FILE, -C DIR) or attest.yaml",
             "    set -l toks (commandline -opc)",
             "    set -l file attest.yaml",
             "    set -l dir .",
             "    for i in (seq (count $toks))",
             "        set -l next (math $i + 1)",
             "        switch $toks[$i]",
             "            case -p --pipeline",
             "                test $next -le (count $toks); and set file $toks[$next]",
             "            case -C --working-dir",
             "                test $next -le (count $toks); and set dir $toks[$next]",
             "        end",
             "    end",
             "    string match -q -- '/*' $file; or set file $dir/$file",
             "    test -f $file; or return 0",
             f"    awk -v q=\"'\" '{_fq_raw(STEP_NAMES_AWK)}' $file 2>/dev/null",
             "end",
             "function __attest_prev_is",
             "    # the word before the cursor is one of the arguments",
             "    set -l toks (commandline -opc)",
             "    contains -- \"$toks[-1]\" $argv",
             "end",
             "complete -c attest -f"]
    for info in tree:
        if info.path:
            parent = info.path[:-1]
            cond = _fish_cond(parent, tree)
            lines.append(f"complete -c attest -n '{cond}' -a {info.path[-1]} "
                         f"-d '{_fq(info.help)}'")
    for info in tree:
        cond = _fish_cond(info.path, tree)
        for flags, help_, choices, takes in info.options:
            parts = []
            for f in flags:
                parts.append(f"-l {f[2:]}" if f.startswith("--") else f"-s {f[1:]}")
            arg = f" -x -a '{' '.join(choices)}'" if choices else (" -r" if takes else "")
            if "--step" in flags:
                arg = " -x -a '(__attest_steps)'"
            lines.append(f"complete -c attest -n '{cond}' {' '.join(parts)}{arg} "
                         f"-d '{_fq(help_)}'")
        if info.path in CONFIG_KEY_COMMANDS:
            lines.append(f"complete -c attest -n '{cond}; and __attest_prev_is "
                         f"{info.path[-1]} --global' -x -a '{' '.join(_config_keys())}'")
        if info.path == ("config", "set"):
            for key, values in _config_value_choices().items():
                lines.append(f"complete -c attest -n '{cond}; and __attest_prev_is {key}' "
                             f"-x -a '{' '.join(values)}'")
        if info.path in STEP_ARGUMENT_COMMANDS:
            lines.append(f"complete -c attest -n '{cond}' -a '(__attest_steps)'")
        if info.argument_choices:
            lines.append(f"complete -c attest -n '{cond}' -x -a "
                         f"'{' '.join(info.argument_choices)}'")
    return "\n".join(lines) + "\n"


def _fq_raw(text: str) -> str:
    """Text inside fish single quotes, where only ``\\'`` and ``\\\\`` are escapes."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _fish_cond(path: tuple[str, ...], tree: list[CommandInfo]) -> str:
    if not path:
        return "__fish_use_subcommand"
    parts = [f"__fish_seen_subcommand_from {p}" for p in path]
    info = next(t for t in tree if t.path == path)
    if info.subcommands:
        parts.append(f"not __fish_seen_subcommand_from {' '.join(info.subcommands)}")
    return "; and ".join(parts)


def _fq(text: str) -> str:
    return text.replace("'", "\\'")[:80]


def _roff(text: str) -> str:
    """Text as roff reads it literally.

    A backslash is doubled, a hyphen is ``\\-`` (a minus: options copy-paste), a quote is
    ``\\(aq`` (``\\'`` is an acute accent), and a line starting with ``.`` or ``'`` gets a
    ``\\&`` so that it is not read as a macro call (``.attest/config.yaml`` used to vanish).
    """
    out = text.replace("\\", "\\\\").replace("-", "\\-").replace("'", "\\(aq")
    return "\\&" + out if out.startswith((".", "'")) else out


def man(tree: list[CommandInfo]) -> str:
    date = datetime.date(2026, 1, 1).isoformat()  # fixed: regenerating must be reproducible
    lines = [f'.TH ATTEST 1 "{date}" "attest {__version__}" "User Commands"', ".SH NAME",
             "attest \\- run pipelines whose every step is cached, signed and observable",
             ".SH SYNOPSIS", ".B attest", "[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]",
             ".SH DESCRIPTION",
             _roff("attest runs the steps of attest.yaml as a DAG, in parallel, skips steps whose "
                   "inputs did not change, signs a receipt of what ran, and reports everything "
                   "through Prometheus metrics, JSON logs, OpenTelemetry traces, health "
                   "endpoints, profiles and benchmarks."),
             ".SH COMMANDS"]
    for info in tree:
        if info.subcommands and info.path:
            continue
        name = " ".join(("attest", *info.path)) if info.path else "attest (global options)"
        lines.append(f".SS {_roff(name)}")
        if info.help:
            lines.append(_roff(info.help))
        if info.arguments:
            lines.append(".PP")
            lines.append("Arguments: " + _roff(" ".join(info.arguments)))
        for flags, help_, choices, takes in info.options:
            lines.append(".TP")
            value = " \\fIVALUE\\fR" if takes else ""
            lines.append("\\fB" + _roff(", ".join(flags)) + "\\fR" + value)
            text = help_ + (f" One of: {', '.join(choices)}." if choices else "")
            lines.append(_roff(text) if text else ".")
    lines += [".SH EXAMPLES"]
    lines += _man_examples()
    lines += [".SH EXIT STATUS", ".TP", "0", "success", ".TP", "1",
              _roff("the pipeline, a verification, a comparison gate or a health check failed"),
              ".TP", "2", _roff("usage, configuration or input error"), ".TP", "130",
              "interrupted (SIGINT)", ".TP", "143", "terminated (SIGTERM)",
              ".SH ENVIRONMENT", ".TP", "ATTEST_LOG_LEVEL", "trace, debug, info, warn or error",
              ".TP", "ATTEST_CONFIG", "an extra configuration file", ".TP", "ATTEST_CACHE_DIR",
              "the local cache directory", ".TP", "ATTEST_SIGNING_KEY", "the private signing key",
              ".TP", "ATTEST_DEBUG", "1 shows tracebacks",
              ".TP", "TRACEPARENT, TRACESTATE", _roff("W3C trace context the run joins"),
              ".TP", "NO_COLOR", "disables colour",
              ".SH FILES", ".TP", "attest.yaml", "the pipeline",
              ".TP", _roff(".attest/config.yaml"),
              "project configuration", ".TP", _roff("$XDG_CONFIG_HOME/attest/config.yaml"),
              "user configuration", ".TP", _roff(".attest/runs/"), "run reports", ""]
    return "\n".join(lines)


def _man_examples() -> list[str]:
    """The EXAMPLES section: the same table as the ``Examples:`` of each ``--help``."""
    from attest_cli.cli.examples import EXAMPLES

    lines = []
    for examples in EXAMPLES.values():
        for command, what in examples:
            lines += [".TP", ".B " + _roff(command), _roff(what[:1].upper() + what[1:] + ".")]
    return lines


def generate(out: Path) -> dict[Path, str]:
    tree = command_tree()
    return {
        out / "completions" / "attest.bash": bash(tree),
        out / "completions" / "_attest": zsh(tree),
        out / "completions" / "attest.fish": fish(tree),
        out / "man" / "attest.1": man(tree),
    }


def main(argv: list[str]) -> int:
    out = DATA
    if "--out" in argv:
        out = Path(argv[argv.index("--out") + 1])
    for path, text in generate(out).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
