#!/bin/sh
# The image's entrypoint: bring the database to the latest migration, then become the command
# (exec, so it is PID 1 and gets the container's SIGTERM). Several replicas starting at once on
# one PostgreSQL should migrate from one place instead: ESCROW_MIGRATE_ON_START=false skips it,
# and `escrow serve` / `escrow worker` then refuse to start until the schema is current.
set -eu
if [ "${ESCROW_MIGRATE_ON_START:-true}" != "false" ]; then
    escrow migrate
fi
exec "$@"
