#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer at DATABASE_URL / REDIS_URL. If one does not and it is
# the local default, try the locally installed server (the commands this machine kind documents);
# otherwise stop with one clear sentence. Creates the database if it is missing.
set -u
PY=${PY:-.venv/bin/python}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lcm}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}

probe() { "$PY" - "$1" <<'PYEOF'
import sys
from urllib.parse import urlsplit
kind = sys.argv[1]
import os
try:
    if kind == "postgres":
        import psycopg
        u = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lcm"))
        psycopg.connect(host=u.hostname or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                        password=u.password, dbname="postgres", connect_timeout=3).close()
    else:
        import redis
        redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), socket_connect_timeout=3).ping()
except Exception:
    sys.exit(1)
PYEOF
}

is_local() { case "$1" in *127.0.0.1*|*localhost*) return 0;; *) return 1;; esac; }

export DATABASE_URL REDIS_URL
if ! probe postgres; then
  if is_local "$DATABASE_URL" && command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "PostgreSQL is not answering; starting the local server..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 20); do probe postgres && break; sleep 0.5; done
  fi
  probe postgres || { echo "Cannot reach PostgreSQL at DATABASE_URL=$DATABASE_URL: start it, point DATABASE_URL at a running server, or run the whole stack with 'docker compose up'." >&2; exit 1; }
fi
if ! probe redis; then
  if is_local "$REDIS_URL" && command -v redis-server >/dev/null 2>&1; then
    echo "Redis is not answering; starting the local server..."
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1 || true
    for _ in $(seq 1 20); do probe redis && break; sleep 0.5; done
  fi
  probe redis || { echo "Cannot reach Redis at REDIS_URL=$REDIS_URL: start it, point REDIS_URL at a running server, or run the whole stack with 'docker compose up'." >&2; exit 1; }
fi
"$PY" - <<'PYEOF'
import os
from urllib.parse import urlsplit, unquote
import psycopg
u = urlsplit(os.environ["DATABASE_URL"])
name = unquote(u.path.lstrip("/")) or "lcm"
with psycopg.connect(host=u.hostname or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                     password=u.password, dbname="postgres", autocommit=True) as conn:
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
        conn.execute(f'CREATE DATABASE "{name}"')
        print(f"Created database {name}.")
PYEOF
