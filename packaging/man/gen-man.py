#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes a gzipped man page for a vmtide binary: NAME, SYNOPSIS and OPTIONS
# (and COMMANDS, one subsection per subcommand) from the binary's own CLI11
# --help, so they always match the flags; the prose sections (DESCRIPTION,
# FILES, SIGNALS, EXIT STATUS, SEE ALSO) from a hand-written roff file.
#   gen-man.py BINARY NAME SECTION VERSION EXTRA.in OUT.gz
import gzip
import re
import subprocess
import sys

DESC_COLUMN = 30  # CLI11 puts an option's description in this column


def run_help(binary, *args):
    out = subprocess.run([binary, *args, "--help"], check=True, capture_output=True, text=True).stdout
    return out.splitlines()


def esc(text):
    """Escape a line of --help text for roff."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return ("\\&" + text) if text.startswith((".", "'")) else text


def parse(lines):
    """CLI11 help -> (summary, usage, options [(flags, desc)], subcommands [(name, desc)])."""
    summary = lines[0].split(":", 1)[1].strip() if ":" in lines[0] else lines[0]
    usage, options, subs, section = "", [], [], None
    for line in lines[1:]:
        if line.startswith("Usage:"):
            usage = line[len("Usage:"):].strip()
            continue
        if line in ("Options:", "Subcommands:", "Positionals:"):
            section = line[:-1]
            continue
        if not line.strip():
            continue
        if line.startswith(" " * DESC_COLUMN) and options and section in ("Options", "Positionals"):
            flags, desc = options[-1]
            options[-1] = (flags, (desc + " " + line.strip()).strip())
            continue
        m = re.match(r"^  (\S.*?)(?:\s{2,}(\S.*))?$", line)
        if not m:
            continue
        if section == "Subcommands":
            subs.append((m.group(1), m.group(2) or ""))
        elif section in ("Options", "Positionals"):
            options.append((m.group(1), m.group(2) or ""))
    return summary, usage, options, subs


def options_roff(options):
    out = []
    for flags, desc in options:
        out += [".TP", "\\fB" + esc(flags) + "\\fR", esc(desc)]
    return out


def main():
    binary, name, section, version, extra, dest = sys.argv[1:7]
    summary, usage, options, subs = parse(run_help(binary))
    usage = re.sub(r"^\S*/", "", usage)  # "./build/bin/vmtide-agent" -> "vmtide-agent"
    roff = [
        f'.TH {name.upper()} {section} "" "vmtide {version}" "vmtide"',
        ".SH NAME",
        f"{name} \\- {esc(summary)}",
        ".SH SYNOPSIS",
        ".B " + esc(usage),
    ]
    generated = [".SH OPTIONS"] + options_roff(options)
    if subs:
        generated.append(".SH COMMANDS")
        for sub, sub_desc in subs:
            s_summary, s_usage, s_options, _ = parse(run_help(binary, sub))
            generated += [f".SS {name} {sub}", esc(s_summary or sub_desc), ".PP",
                          ".B " + esc(re.sub(r"^\S*/", "", s_usage))]
            generated += options_roff(s_options)
    # OPTIONS (and COMMANDS) go right after DESCRIPTION, as man-pages(7) orders them.
    prose = [line.rstrip("\n") for line in open(extra)]
    sections = [i for i, line in enumerate(prose) if line.startswith(".SH ")]
    cut = sections[1] if len(sections) > 1 else len(prose)
    roff += prose[:cut] + generated + prose[cut:]
    with gzip.GzipFile(dest, "wb", mtime=0) as f:  # reproducible: no timestamp
        f.write(("\n".join(roff) + "\n").encode())


if __name__ == "__main__":
    main()
