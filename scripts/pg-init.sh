#!/usr/bin/env bash
# Creates the Orleans schema of cluster.clustering=postgres (membership + grain storage tables and the
# OrleansQuery rows the Orleans 10.4.2 ADO.NET providers read) in an existing PostgreSQL database, with psql.
# Idempotent: tables and query rows are created only when absent.
#
#   scripts/pg-init.sh 'postgresql://blankend:secret@db.example:5432/blankend'
#   PGHOST=db.example PGUSER=blankend PGDATABASE=blankend scripts/pg-init.sh      (libpq variables)
#
# Silos do the same on start-up when the OrleansQuery table is missing, so this is only needed when the
# service's database user may not create tables (run it once as the owner, then grant the service user
# SELECT/INSERT/UPDATE/DELETE on the four tables). Needs psql (Debian: apt-get install postgresql-client).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v psql >/dev/null 2>&1 || { echo "pg-init: psql not found (apt-get install -y postgresql-client)" >&2; exit 1; }
PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql ${1:+"$1"} -X -q -v ON_ERROR_STOP=1 --single-transaction -f deploy/sql/postgresql/blankend-orleans.sql
echo "pg-init: schema present in $(psql ${1:+"$1"} -X -qtA -c 'SELECT current_database()')" \
     "($(psql ${1:+"$1"} -X -qtA -c 'SELECT count(*) FROM OrleansQuery') Orleans queries)"
