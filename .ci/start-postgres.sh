#!/usr/bin/env bash
# Start a PostgreSQL server on 127.0.0.1 for the tests that share an Optuna study between
# worker processes (tests/test_search_postgres.py). These machines start no services, so
# CI installs Debian's PostgreSQL and runs its own cluster on a fixed port.
#
# Usage (as root, on Debian 12 or later):
#   eval "$(bash .ci/start-postgres.sh)"            # exports SKLCIFAR_TEST_POSTGRES_URL
#   bash .ci/start-postgres.sh /tmp/postgres.env    # also writes the export line there
#
# Idempotent: a server already answering on the port is reused, an existing cluster is
# started, and the role and database are created only when missing. Progress goes to
# stderr; stdout carries only the `export SKLCIFAR_TEST_POSTGRES_URL=...` line.
# Settings can be changed with SKLCIFAR_PG_PORT, SKLCIFAR_PG_USER, SKLCIFAR_PG_PASSWORD
# and SKLCIFAR_PG_DB.
set -euo pipefail

PORT="${SKLCIFAR_PG_PORT:-55432}"
DB_USER="${SKLCIFAR_PG_USER:-sklcifar}"
DB_PASSWORD="${SKLCIFAR_PG_PASSWORD:-sklcifar}"
DB_NAME="${SKLCIFAR_PG_DB:-sklcifar_test}"
CLUSTER=sklcifar
ENV_FILE="${1:-}"

log() { echo "start-postgres: $*" >&2; }

if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null \
    || ! command -v pg_createcluster >/dev/null; then
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi
VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
BIN="/usr/lib/postgresql/${VERSION}/bin"

# The socket folder lives under /run, which a fresh container may not have kept.
install -d -o postgres -g postgres -m 2775 /var/run/postgresql

CONF_DIR="/etc/postgresql/${VERSION}/${CLUSTER}/conf.d"
# Several search workers, their training processes and heartbeat threads each hold
# connections: the default 100 slots ran out in a test run.
MAX_CONNECTIONS=400

if "${BIN}/pg_isready" -q -h 127.0.0.1 -p "${PORT}"; then
    log "a server already answers on 127.0.0.1:${PORT}"
    current="$(runuser -u postgres -- psql -X -tA -p "${PORT}" -c 'SHOW max_connections' || echo 0)"
    if [ "${current}" -lt "${MAX_CONNECTIONS}" ] && [ -d "${CONF_DIR}" ]; then
        log "raising max_connections from ${current} to ${MAX_CONNECTIONS}"
        echo "listen_addresses = '127.0.0.1'" >"${CONF_DIR}/sklcifar.conf"
        echo "max_connections = ${MAX_CONNECTIONS}" >>"${CONF_DIR}/sklcifar.conf"
        pg_ctlcluster "${VERSION}" "${CLUSTER}" restart >&2
        for _ in $(seq 1 30); do
            "${BIN}/pg_isready" -q -h 127.0.0.1 -p "${PORT}" && break
            sleep 1
        done
    fi
else
    if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "${VERSION} ${CLUSTER}"; then
        log "creating cluster ${VERSION}/${CLUSTER} on port ${PORT}"
        pg_createcluster "${VERSION}" "${CLUSTER}" --port "${PORT}" >&2
    fi
    # Debian's postgresql.conf reads conf.d/; TCP on the loopback address only.
    echo "listen_addresses = '127.0.0.1'" >"${CONF_DIR}/sklcifar.conf"
    echo "max_connections = ${MAX_CONNECTIONS}" >>"${CONF_DIR}/sklcifar.conf"
    log "starting cluster ${VERSION}/${CLUSTER}"
    pg_ctlcluster "${VERSION}" "${CLUSTER}" start >&2
    for _ in $(seq 1 30); do
        "${BIN}/pg_isready" -q -h 127.0.0.1 -p "${PORT}" && break
        sleep 1
    done
    "${BIN}/pg_isready" -h 127.0.0.1 -p "${PORT}" >&2
fi

# Peer authentication over the local socket as the postgres superuser.
psql_admin() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "${PORT}" "$@"; }
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '${DB_USER}'")" != "1" ]; then
    log "creating role ${DB_USER}"
    psql_admin -c "CREATE ROLE \"${DB_USER}\" LOGIN PASSWORD '${DB_PASSWORD}'"
fi
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '${DB_NAME}'")" != "1" ]; then
    log "creating database ${DB_NAME}"
    psql_admin -c "CREATE DATABASE \"${DB_NAME}\" OWNER \"${DB_USER}\""
fi

URL="postgresql+psycopg://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${PORT}/${DB_NAME}"
LINE="export SKLCIFAR_TEST_POSTGRES_URL=${URL}"
if [ -n "${ENV_FILE}" ]; then
    echo "${LINE}" >"${ENV_FILE}"
    log "wrote ${ENV_FILE}"
fi
echo "${LINE}"
