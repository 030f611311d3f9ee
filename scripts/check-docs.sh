#!/usr/bin/env bash
# Checks the SQL reference in docs/*.md against a live database: every documented function or
# procedure must exist with the documented argument types, every documented view must exist.
#
#   bash scripts/check-docs.sh [DB]        (default DB: pe_regress)
#
# DB must already have CREATE EXTENSION popularity_engine. The connection is the one of
# scripts/pgcluster.sh (PE_PORT, PE_DATA): the test cluster of `make test` (started again with
# PE_PORT=28816 PE_DATA=/tmp/popularity_engine/test-cluster-28816 PE_DB=pe_test
# scripts/pgcluster.sh start) holds pe_regress; or a private cluster:
#   PE_PORT=28830 PE_DATA=/tmp/popularity_engine/docs-cluster PE_DB=docs_check bash scripts/pgcluster.sh start
#   PE_PORT=28830 PE_DATA=/tmp/popularity_engine/docs-cluster bash scripts/pgcluster.sh psql -d docs_check \
#     -c 'CREATE EXTENSION IF NOT EXISTS popularity_engine'
#   PE_PORT=28830 PE_DATA=/tmp/popularity_engine/docs-cluster bash scripts/check-docs.sh docs_check
#
# What counts as documented (docs/testing.md explains the convention): a Markdown table row whose
# first cell is
#   `name(arg type, arg type DEFAULT value, ...)`   a routine: checked as
#                                                  to_regprocedure('popularity_engine.name(type, type, ...)')
#   `popularity_engine.name`                       a view: checked with to_regclass, and must be a view
# Argument names, defaults and OUT arguments are dropped; types are resolved with
# search_path = popularity_engine, pg_catalog, so the extension's own types (interaction_type,
# popularity_mode) may be written unqualified.
#
# Prints one line per missing or mismatched item and exits 1 if there is any, else prints
# "docs: N routines and M views checked". Exits 2 when it cannot check (no docs, no extension).
set -euo pipefail
cd "$(dirname "$0")/.."

DB=${1:-pe_regress}
export PGOPTIONS="${PGOPTIONS:-} -c search_path=popularity_engine,pg_catalog -c client_min_messages=warning"

shopt -s nullglob
docs=(docs/*.md)
[ ${#docs[@]} -gt 0 ] || { echo "check-docs: no docs/*.md" >&2; exit 2; }
command -v python3 >/dev/null || { echo "check-docs: python3 is required" >&2; exit 2; }

# One tab-separated line per documented item: kind, where, as documented, what to look up.
items=$(python3 - "${docs[@]}" <<'PY'
import re
import sys

CELL = re.compile(r'^\s*\|\s*`([^`]+)`')
ROUTINE = re.compile(r'([a-z_][a-z0-9_]*)\((.*)\)', re.S)
VIEW = re.compile(r'popularity_engine\.([a-z_][a-z0-9_]*)')
MODES = {'IN', 'OUT', 'INOUT', 'VARIADIC'}


def split_args(text):
    """Splits at the commas outside quotes, parentheses and brackets."""
    parts, cur, depth, quoted = [], '', 0, False
    for ch in text:
        if quoted:
            quoted = ch != "'"
        elif ch == "'":
            quoted = True
        elif ch in '([':
            depth += 1
        elif ch in ')]':
            depth -= 1
        elif ch == ',' and depth == 0:
            parts.append(cur)
            cur = ''
            continue
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts] if text.strip() else []


def arg_type(decl):
    """The type of `name type [DEFAULT x]`, or None for an OUT argument."""
    decl = re.split(r'\s+DEFAULT\s+|\s*:?=\s*', decl, maxsplit=1, flags=re.I)[0]
    words = decl.split()
    if words and words[0].upper() in MODES:
        if words[0].upper() == 'OUT':
            return None
        words = words[1:]
    return ' '.join(words[1:] if len(words) > 1 else words)


seen = set()
for path in sys.argv[1:]:
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            m = CELL.match(line)
            if not m:
                continue
            cell = m.group(1).strip()
            where = f'{path}:{lineno}'
            r = ROUTINE.fullmatch(cell)
            v = VIEW.fullmatch(cell)
            if r:
                types = [t for t in map(arg_type, split_args(r.group(2))) if t is not None]
                item = ('routine', f'popularity_engine.{r.group(1)}({", ".join(types)})')
            elif v:
                item = ('view', cell)
            else:
                continue
            if item not in seen:
                seen.add(item)
                print('\t'.join((item[0], where, ' '.join(cell.split()), item[1])))
PY
)

q() { scripts/pgcluster.sh psql -d "$DB" -tAc "$1" 2>&1 </dev/null; }
literal() { printf "'%s'" "${1//\'/\'\'}"; }

has_ext=$(q "SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = 'popularity_engine'") || {
  echo "check-docs: cannot query database $DB: $has_ext" >&2; exit 2; }
[ "$has_ext" = 1 ] || {
  echo "check-docs: database $DB has no extension popularity_engine (CREATE EXTENSION popularity_engine first)" >&2
  exit 2; }

routines=0
views=0
problems=0
while IFS=$'\t' read -r kind where documented lookup; do
  case "$kind" in
    routine)
      routines=$((routines + 1))
      # to_regprocedure raises (rather than returning NULL) for an unknown type: both mean "no".
      if found=$(q "SELECT to_regprocedure($(literal "$lookup")) IS NOT NULL") && [ "$found" = t ]; then
        continue
      fi
      name=${lookup%%(*}
      name=${name#popularity_engine.}
      existing=$(q "SELECT coalesce(string_agg('popularity_engine.' || p.oid::pg_catalog.regprocedure::text, '; '), '')
                      FROM pg_catalog.pg_proc p
                     WHERE p.pronamespace = 'popularity_engine'::pg_catalog.regnamespace
                       AND p.proname = $(literal "$name")")
      if [ -n "$existing" ]; then
        echo "mismatched routine: $where documents $lookup, the database has $existing ($documented)"
      else
        echo "missing routine: $where documents $lookup, which does not exist ($documented)"
      fi
      problems=$((problems + 1))
      ;;
    view)
      views=$((views + 1))
      relkind=$(q "SELECT coalesce((SELECT relkind::text FROM pg_catalog.pg_class
                                     WHERE oid = to_regclass($(literal "$lookup"))), '')")
      case "$relkind" in
        v) ;;
        '') echo "missing view: $where documents $lookup, which does not exist"
            problems=$((problems + 1)) ;;
        *) echo "mismatched view: $where documents $lookup, which is not a view (relkind $relkind)"
           problems=$((problems + 1)) ;;
      esac
      ;;
  esac
done <<<"$items"

if [ "$routines" -eq 0 ]; then
  echo "check-docs: no documented routine found in docs/*.md (first table cell \`name(arg type, ...)\`)" >&2
  exit 2
fi
[ "$problems" -eq 0 ] || exit 1
echo "docs: $routines routines and $views views checked"
