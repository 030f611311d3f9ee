#!/usr/bin/env python3
"""Size limits that keep the code readable, checked by the lint gate:
no SQL routine (function or procedure in sql/*.sql) longer than 80 lines, and no source file
longer than 800 lines. Generated or frozen files (Cargo.lock, gzipped release scripts, images,
pg_regress expected outputs) are not sources."""
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from compose_upgrades import split_statements, strip_leading_comments  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_ROUTINE, MAX_FILE = 80, 800
SOURCES = ["src/*.rs", "sql/*.sql", "sql/upgrades/*.sql", "scripts/*.sh", "scripts/*.py",
           "scripts/demo/*.sql", "bench/*.sh", "bench/*.sql", "bench/*.py", "pgrx-test/src/*.rs",
           "pgrx-test/tests/*.rs", "tests/pg_regress/sql/*.sql", "tests/isolation/specs/*.spec",
           "tests/upgrade/*.sh", "tests/upgrade/*.sql", "tests/reference/*.sql"]
ROUTINE = re.compile(r"CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE)\s+([\w.\"]+)", re.I)


def main():
    problems, routines, files = [], 0, 0
    for pattern in SOURCES:
        for path in sorted(ROOT.glob(pattern)):
            files += 1
            text = path.read_text()
            lines = text.count("\n")
            if lines > MAX_FILE:
                problems.append(f"{path.relative_to(ROOT)}: {lines} lines (at most {MAX_FILE}): split it by concept")
            if path.parent.name != "sql" or path.suffix != ".sql":
                continue
            for statement in split_statements(text):
                body = strip_leading_comments(statement)
                match = ROUTINE.match(body)
                if not match:
                    continue
                routines += 1
                n = body.strip().count("\n") + 1
                if n > MAX_ROUTINE:
                    problems.append(f"{path.relative_to(ROOT)}: {match.group(3)} is {n} lines "
                                    f"(at most {MAX_ROUTINE}): break it into named steps")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"sizes: {routines} SQL routines within {MAX_ROUTINE} lines, {files} files within {MAX_FILE} lines")


if __name__ == "__main__":
    main()
