#!/usr/bin/env python3
"""Composes the upgrade scripts popularity_engine--A--B.sql of every release step.

Only the DDL of a step is written by hand, in sql/upgrades/A--B.sql. The routines are not: a
step re-creates (CREATE OR REPLACE) every function and procedure of B's install script, with
their comments, at the delta's `-- @routines` line (or after the delta without one), then
applies B's privilege statements (GRANT, REVOKE, COMMENT ON ROLE) so that new routines end up
with the same privileges as in a fresh install. Copying function bodies by hand into upgrade
scripts drifted from sql/*.sql; composing them cannot.

B's install script is tests/upgrade/releases/popularity_engine--B.sql.gz when B is released,
else the one `cargo pgrx install` just generated for the crate's version.

What a delta must still do by hand, because CREATE OR REPLACE cannot:
  * DROP FUNCTION/PROCEDURE of a routine that is gone, or whose argument types, argument names,
    result type or kind (function/procedure) changed, or that lost a parameter default;
  * REVOKE a privilege that B no longer grants;
  * tables, columns, indexes, types, views, triggers, roles, config dumps, data migrations.
The delta runs before the routines unless it has a `-- @routines` line; put after that line
what needs the new routines (e.g. dropping a table only the old routines referenced).

Releasing X (the crate's version):
  1. add X to sql/RELEASED;
  2. scripts/install-extension.sh --release, then keep its generated install script:
       gzip -9n < "$(pg_config --sharedir)/extension/popularity_engine--X.sql" \\
         > tests/upgrade/releases/popularity_engine--X.sql.gz
  3. when the crate's version becomes NEXT, start sql/upgrades/X--NEXT.sql (a header comment
     and `-- @routines`).
scripts/check-upgrade-path.sh fails while one of these files is missing.

Usage:
  compose_upgrades.py EXT_DIR [--install-script FILE] [--out DIR]
      EXT_DIR holds the generated install script of the crate's version (or FILE does);
      the composed scripts go to DIR (default EXT_DIR).
  compose_upgrades.py --self-test
      no database needed: the splitter on tricky inputs, and the composed 0.1.0--0.2.0 against
      the hand-written script it replaced (from git history).
"""
import argparse
import gzip
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASES = ROOT / "tests/upgrade/releases"
DELTAS = ROOT / "sql/upgrades"
MARKER = "-- @routines"

IDENT_CHAR = re.compile(r"[A-Za-z0-9_$\u0080-\uffff]")
WORD = re.compile(r"[A-Za-z0-9_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*")
DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
ATOMIC_NEXT = re.compile(r"\s+atomic\b", re.I)
LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*|\\[^\n]*)+")  # blanks, -- comments, psql meta lines

ROUTINE = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE)\b", re.I)
ROUTINE_COMMENT = re.compile(r"COMMENT\s+ON\s+(?:FUNCTION|PROCEDURE)\b", re.I)
PRIVILEGE = re.compile(r"(?:GRANT|REVOKE)\b|COMMENT\s+ON\s+ROLE\b", re.I)


def fail(message):
    sys.exit(f"compose_upgrades: {message}")


def _skip_block_comment(sql, i):
    depth = 0  # PostgreSQL's /* */ comments nest
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise ValueError(f"unterminated /* comment at line {sql.count(chr(10), 0, i) + 1}")


def _skip_quoted(sql, i, quote, backslash_escapes):
    j = i + 1
    while j < len(sql):
        if backslash_escapes and sql[j] == "\\":
            j += 2
        elif sql[j] == quote:
            if not sql.startswith(quote, j + 1):
                return j + 1
            j += 2  # a doubled quote stands for itself
        else:
            j += 1
    raise ValueError(f"unterminated {quote} at line {sql.count(chr(10), 0, i) + 1}")


def split_statements(sql):
    """The statements of a script, each with the comments before it and its closing ';'.

    Semicolons in quotes ('', E'', "", $$, $tag$) and comments do not end a statement, nor do
    those of a SQL-standard body (CREATE FUNCTION ... BEGIN ATOMIC ... END): as psql does, BEGIN
    and then CASE open a level that END closes, outside parentheses of a CREATE FUNCTION or
    PROCEDURE. Text after the last ';' that is not only comments is a statement too."""
    statements, start, i = [], 0, 0
    words, parens, atomic = [], 0, 0
    while i < len(sql):
        c = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif c == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and not (i > 1 and IDENT_CHAR.match(sql[i - 2]))
            i = _skip_quoted(sql, i, "'", escapes)
        elif c == '"':
            i = _skip_quoted(sql, i, '"', False)
        elif c == "$" and DOLLAR_QUOTE.match(sql, i):
            tag = DOLLAR_QUOTE.match(sql, i).group(0)
            end = sql.find(tag, i + len(tag))
            if end < 0:
                raise ValueError(f"unterminated {tag} at line {sql.count(chr(10), 0, i) + 1}")
            i = end + len(tag)
        elif WORD.match(sql, i):  # a whole word (or number), so that keywords are whole words
            m = WORD.match(sql, i)
            word, i = m.group(0).lower(), m.end()
            words.append(word)
            routine = words[:1] == ["create"] and (
                words[1:2] in (["function"], ["procedure"])
                or words[1:3] == ["or", "replace"] and words[3:4] in (["function"], ["procedure"]))
            if routine and parens == 0:
                if word == "begin" and ATOMIC_NEXT.match(sql, i):
                    atomic += 1
                elif word == "case" and atomic:
                    atomic += 1
                elif word == "end" and atomic:
                    atomic -= 1
        else:
            parens += {"(": 1, ")": -1}.get(c, 0)
            i += 1
            if c == ";" and not atomic:
                statements.append(sql[start:i])
                start, words, parens = i, [], 0
    if strip_leading_comments(sql[start:]):
        statements.append(sql[start:])
    return statements


def strip_leading_comments(statement):
    """The statement from its first keyword on: no comments, blank lines or psql meta lines."""
    i = 0
    while True:
        m = LEADING_NOISE.match(statement, i)
        if m and m.end() > i:
            i = m.end()
        elif statement.startswith("/*", i):
            i = _skip_block_comment(statement, i)
        else:
            return statement[i:]


def routines_and_privileges(install_script):
    """(routine definitions and their comments, privilege statements) of an install script, in
    its order; the routines turned into CREATE OR REPLACE."""
    routines, privileges = [], []
    for statement in map(strip_leading_comments, split_statements(install_script)):
        m = ROUTINE.match(statement)
        if m:
            routines.append(f"CREATE OR REPLACE {m.group(1).upper()}" + statement[m.end():])
        elif ROUTINE_COMMENT.match(statement):
            routines.append(statement)
        elif PRIVILEGE.match(statement):
            privileges.append(statement)
    return routines, privileges


def compose(old, new, delta, install_script):
    """The text of popularity_engine--old--new.sql."""
    routines, privileges = routines_and_privileges(install_script)
    body = (f"-- @routines: {sum(bool(ROUTINE.match(r)) for r in routines)} routines of the"
            f" install script of {new}, with their comments\n" + "\n\n".join(routines) + "\n")
    lines = delta.splitlines(keepends=True)
    at = [n for n, line in enumerate(lines) if line.strip() == MARKER]
    if len(at) > 1:
        raise ValueError(f"{old}--{new}: more than one '{MARKER}' line")
    if not at:
        lines, at = lines + ["\n", MARKER + "\n"], [len(lines) + 1]
    lines[at[0]] = body
    return (f"-- Composed by scripts/compose_upgrades.py from sql/upgrades/{old}--{new}.sql and the"
            f" install script of {new}: edit those, not this.\n"
            f"\\echo Use \"ALTER EXTENSION popularity_engine UPDATE TO '{new}'\" to load this file. \\quit\n"
            + "".join(lines)
            + f"\n-- The privileges of a fresh {new} install, new routines included.\n"
            + "\n".join(privileges) + "\n")


def crate_version():
    m = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    return m.group(1) if m else fail("no version in Cargo.toml")


def version_chain():
    """The released versions, in order, then the crate's version if it is not released yet."""
    released = (ROOT / "sql/RELEASED").read_text().split()
    version = crate_version()
    return released, released + ([version] if version not in released else [])


def install_script_of(version, released, current_install_script):
    if version in released:
        frozen = RELEASES / f"popularity_engine--{version}.sql.gz"
        if not frozen.is_file():
            fail(f"missing {frozen.relative_to(ROOT)} (the install script of release {version})")
        return gzip.decompress(frozen.read_bytes()).decode()
    if not current_install_script or not current_install_script.is_file():
        fail(f"no generated install script of {version} ({current_install_script}):"
             " run cargo pgrx install first (scripts/install-extension.sh does both)")
    return current_install_script.read_text()


def compose_chain(current_install_script, out_dir):
    released, chain = version_chain()
    scripts = {}  # all composed before any is written: a missing file leaves nothing half done
    for old, new in zip(chain, chain[1:]):
        delta = DELTAS / f"{old}--{new}.sql"
        if not delta.is_file():
            fail(f"missing {delta.relative_to(ROOT)} (the DDL of the update from {old} to {new})")
        scripts[out_dir / f"popularity_engine--{old}--{new}.sql"] = compose(
            old, new, delta.read_text(), install_script_of(new, released, current_install_script))
    for target, script in scripts.items():
        target.write_text(script)
        print(f"compose_upgrades: {target}")


# Self-test ----------------------------------------------------------------------------------

SPLIT_CASES = [
    ("SELECT 1; SELECT 2;", ["SELECT 1;", " SELECT 2;"]),
    ("SELECT 'a;''b'; SELECT E'\\';x'; SELECT \"we;\"\"ird\";",
     ["SELECT 'a;''b';", " SELECT E'\\';x';", ' SELECT "we;""ird";']),
    ("-- c;\n/* d; /* nested; */ e; */ SELECT 1; -- tail;\n",
     ["-- c;\n/* d; /* nested; */ e; */ SELECT 1;"]),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$; SELECT $1;",
     ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;", " SELECT $1;"]),
    ("DO $body$ BEGIN PERFORM $$;$$; END $body$; SELECT a$b FROM t;",
     ["DO $body$ BEGIN PERFORM $$;$$; END $body$;", " SELECT a$b FROM t;"]),
    ("CREATE OR REPLACE FUNCTION f(begin int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
     "  SELECT CASE WHEN begin > 0 THEN 1 ELSE 2 END; -- end;\n  SELECT (CASE 1 WHEN 1 THEN 3 END);\nEND;\n"
     "BEGIN; COMMIT;",
     ["CREATE OR REPLACE FUNCTION f(begin int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
      "  SELECT CASE WHEN begin > 0 THEN 1 ELSE 2 END; -- end;\n  SELECT (CASE 1 WHEN 1 THEN 3 END);\nEND;",
      "\nBEGIN;", " COMMIT;"]),
    ("CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (';'); END; SELECT 'end';",
     ["CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (';'); END;", " SELECT 'end';"]),
]

COMPOSE_CASE = """\
/* <begin connected objects> */
CREATE TYPE t AS ENUM ('a');
-- src/lib.rs:1
CREATE  FUNCTION "g"() RETURNS bigint /* i64 */
LANGUAGE c AS 'MODULE_PATHNAME', 'g_wrapper';
CREATE OR REPLACE FUNCTION popularity_engine.h() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;
COMMENT ON FUNCTION popularity_engine.h() IS 'h; really';
CREATE CAST (int AS t) WITH INOUT;
CREATE PROCEDURE popularity_engine.p() LANGUAGE plpgsql AS $p$ BEGIN COMMIT; END $p$;
DO $$ BEGIN CREATE ROLE r; END $$;
REVOKE ALL ON ALL TABLES IN SCHEMA popularity_engine FROM PUBLIC;
COMMENT ON ROLE r IS 'reader';
GRANT EXECUTE ON FUNCTION popularity_engine.h() TO r;
"""
COMPOSE_EXPECTED = [
    'CREATE OR REPLACE FUNCTION "g"() RETURNS bigint /* i64 */\nLANGUAGE c AS \'MODULE_PATHNAME\', \'g_wrapper\';',
    "CREATE OR REPLACE FUNCTION popularity_engine.h() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;",
    "COMMENT ON FUNCTION popularity_engine.h() IS 'h; really';",
    "CREATE OR REPLACE PROCEDURE popularity_engine.p() LANGUAGE plpgsql AS $p$ BEGIN COMMIT; END $p$;",
], [
    "REVOKE ALL ON ALL TABLES IN SCHEMA popularity_engine FROM PUBLIC;",
    "COMMENT ON ROLE r IS 'reader';",
    "GRANT EXECUTE ON FUNCTION popularity_engine.h() TO r;",
]


def routine_key(statement):
    """A routine's name without schema or quotes, e.g. 'track', or None."""
    m = ROUTINE.match(statement)
    if not m:
        return None
    name = re.match(r'\s*((?:"[^"]*"|[^\s(])+)', statement[m.end():]).group(1)
    return name.replace('"', "").split(".")[-1].lower()


def normalised(statement):
    """Whitespace-normalised text, after CREATE [OR REPLACE] FUNCTION|PROCEDURE."""
    m = ROUTINE.match(statement)
    return " ".join(statement[m.end() if m else 0:].split())


def old_pasted_script():
    """sql/popularity_engine--0.1.0--0.2.0.sql as last committed, before it was composed."""
    path = "sql/popularity_engine--0.1.0--0.2.0.sql"
    git = ["git", "-C", str(ROOT)]
    try:
        last = subprocess.run(git + ["rev-list", "-n", "1", "HEAD", "--", path],
                              capture_output=True, text=True, check=True).stdout.strip()
        for rev in (f"{last}:{path}", f"{last}^:{path}") if last else ():
            shown = subprocess.run(git + ["show", rev], capture_output=True, text=True)
            if shown.returncode == 0:  # the commit that deleted it has it only in its parent
                return shown.stdout
    except (OSError, subprocess.CalledProcessError):
        pass
    return None


def in_order(text, *parts):
    positions = [text.find(p) for p in parts]
    return -1 not in positions and positions == sorted(positions)


def routine_texts(script):
    """{routine name: [whitespace-normalised definitions]} and the set of all statements so."""
    by_name, texts = {}, set()
    for s in map(strip_leading_comments, split_statements(script)):
        texts.add(normalised(s))
        if routine_key(s):
            by_name.setdefault(routine_key(s), []).append(normalised(s))
    return by_name, texts


def compare_with_hand_written():
    """The composed 0.1.0--0.2.0 must define every routine of the hand-written script it
    replaced exactly as that did, with the same comments; every other routine it re-creates
    must be unchanged since 0.1.0 (so replacing it is a no-op). Returns the failures."""
    pasted = old_pasted_script()
    if pasted is None:
        print("self-test: SKIPPED the comparison with the hand-written 0.1.0--0.2.0 script (no git history)")
        return []
    released, _ = version_chain()
    composed, composed_texts = routine_texts(compose(
        "0.1.0", "0.2.0", (DELTAS / "0.1.0--0.2.0.sql").read_text(),
        install_script_of("0.2.0", released, None)))
    pasted_routines, _ = routine_texts(pasted)
    v010, _ = routine_texts(install_script_of("0.1.0", released, None))
    failures, same = [], 0
    for name, definitions in pasted_routines.items():
        for d in definitions:
            if d in composed.get(name, []):
                same += 1
            else:
                failures.append(f"0.1.0--0.2.0: {name}: the hand-written definition is not in the"
                                f" composed script:\n  {d[:400]}")
    for s in map(strip_leading_comments, split_statements(pasted)):
        if ROUTINE_COMMENT.match(s) and normalised(s) not in composed_texts:
            failures.append(f"0.1.0--0.2.0: comment missing from the composed script: {s[:200]}")
        elif not routine_key(s) and not ROUTINE_COMMENT.match(s):
            print(f"self-test: 0.1.0--0.2.0: differs: hand-written only (0.2.0's own privilege"
                  f" statements replace it): {' '.join(s.split())[:150]}")
    others = [(name, d) for name, ds in composed.items() if name not in pasted_routines for d in ds]
    for name, d in others:
        if d not in v010.get(name, []):
            failures.append(f"0.1.0--0.2.0: {name} differs from 0.1.0's but the hand-written script"
                            f" did not replace it:\n  {d[:400]}")
    print(f"self-test: 0.1.0--0.2.0: {same} routines of the hand-written script identical in the"
          f" composed one; its {len(others)} other routines identical to 0.1.0's (no-op replaces)")
    return failures


def self_test():
    failures = []
    for sql, expected in SPLIT_CASES:
        got = split_statements(sql)
        if got != expected:
            failures.append(f"split {sql!r}\n  expected {expected!r}\n  got      {got!r}")
    got = routines_and_privileges(COMPOSE_CASE)
    if got != COMPOSE_EXPECTED:
        failures.append(f"routines_and_privileges: expected {COMPOSE_EXPECTED!r}\n  got {got!r}")
    # The routines go at the marker, else after the delta; the privileges always last.
    with_marker = compose("1", "2", "-- x\n-- @routines\nDROP TABLE t;\n", COMPOSE_CASE)
    without = compose("1", "2", "-- x\nALTER TABLE t ADD c int;\n", COMPOSE_CASE)
    if not in_order(with_marker, "\\quit", "-- x", "g_wrapper", "h; really", "DROP TABLE", "REVOKE", "TO r;"):
        failures.append(f"compose with a marker gave:\n{with_marker}")
    if not in_order(without, "\\quit", "-- x", "ADD c int", "g_wrapper", "h; really", "REVOKE", "TO r;"):
        failures.append(f"compose without a marker gave:\n{without}")
    cases = len(SPLIT_CASES) + 3
    print(f"self-test: splitter and composition: {cases - len(failures)} of {cases} cases passed")

    failures += compare_with_hand_written()
    for f in failures:
        print(f"self-test: FAILED: {f}")
    print("self-test: " + ("FAILED" if failures else "ok"))
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ext_dir", nargs="?", type=Path,
                        help="directory holding the generated install script of the crate's version")
    parser.add_argument("--install-script", type=Path,
                        help="that install script (default EXT_DIR/popularity_engine--VERSION.sql)")
    parser.add_argument("--out", type=Path, help="where to write the upgrade scripts (default EXT_DIR)")
    parser.add_argument("--self-test", action="store_true", help="test without a database")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not args.ext_dir and not (args.install_script and args.out):
        parser.error("give EXT_DIR, or --install-script and --out")
    current = args.install_script or args.ext_dir / f"popularity_engine--{crate_version()}.sql"
    compose_chain(current, args.out or args.ext_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
