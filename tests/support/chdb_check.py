"""Runs driftline's ClickHouse statements on a current ClickHouse engine
(chdb, in process): argv[1] is a JSON list of {"what", "sql"}; every one
runs in order in a fresh database. Prints each failure and exits 1 if any."""
import json
import sys
import tempfile

from chdb import session

statements = json.load(open(sys.argv[1]))
s = session.Session(tempfile.mkdtemp(prefix="chdb-"))
s.query("CREATE DATABASE IF NOT EXISTS driftline")
s.query("USE driftline")
failed = 0
for st in statements:
    try:
        s.query(st["sql"], "JSONCompact")
    except Exception as e:  # chdb raises its own error type per failure
        failed += 1
        print(f"FAILED {st['what']}: {e}\n  {st['sql'][:300]}")
print(f"chdb {s.query('SELECT version()', 'CSV').bytes().decode().strip()}: "
      f"{len(statements) - failed} of {len(statements)} statements ran")
sys.exit(1 if failed else 0)
