# Sourced by scripts/test: makes sure PostgreSQL and Redis answer before the suite
# runs. Starts them when they are installed locally but stopped; fails loudly when
# they cannot be reached. Nothing is ever skipped.

PG_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
REDIS_URL_FOR_TESTS="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"

hostport() { # postgres://u@h:p/db -> "h p"
  local rest="${1#*://}"; rest="${rest#*@}"; rest="${rest%%/*}"; rest="${rest%%\?*}"
  local host="${rest%%:*}" port="${rest##*:}"
  [ "$port" = "$rest" ] && port="$2"
  echo "$host $port"
}

can_connect() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

wait_for() { # host port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    can_connect "$1" "$2" && return 0
    sleep 0.1
  done
  return 1
}

is_local() { [ "$1" = 127.0.0.1 ] || [ "$1" = localhost ] || [ "$1" = "::1" ]; }

ensure_postgres() {
  read -r host port < <(hostport "$PG_URL" 5432)
  if ! can_connect "$host" "$port" && is_local "$host" && command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "scripts/test: starting the local PostgreSQL" >&2
    for v in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$v" main start >&2 || true
    done
    wait_for "$host" "$port" 30 || true
  fi
  if ! can_connect "$host" "$port"; then
    echo "scripts/test: PostgreSQL is not reachable at $host:$port." >&2
    echo "  Install and start it (Debian: apt-get install postgresql; pg_ctlcluster <version> main start)," >&2
    echo "  or set TEST_DATABASE_URL to a server where the user may CREATE DATABASE." >&2
    echo "  The PostgreSQL suites are part of the test command and are never skipped." >&2
    exit 1
  fi
}

ensure_redis() {
  read -r host port < <(hostport "$REDIS_URL_FOR_TESTS" 6379)
  if ! can_connect "$host" "$port" && is_local "$host" && command -v redis-server >/dev/null 2>&1; then
    echo "scripts/test: starting the local Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log >&2 || true
    wait_for "$host" "$port" 30 || true
  fi
  if ! can_connect "$host" "$port"; then
    echo "scripts/test: Redis is not reachable at $host:$port." >&2
    echo "  Install and start it (Debian: apt-get install redis-server; redis-server --daemonize yes)," >&2
    echo "  or set TEST_REDIS_URL. The Redis suites are never skipped." >&2
    exit 1
  fi
}

# Settings that lift the per-address and per-user rate limits, for load tools
# whose thousands of users all come from 127.0.0.1 (never for a real node).
lifted_limits() {
  echo IEUM_SIGNUPS_PER_HOUR_PER_CLIENT=100000000 IEUM_ROOMS_PER_HOUR=100000000 \
    IEUM_USER_SEND_RATE=100000000 IEUM_READ_RATE=100000000 IEUM_REACTION_RATE=100000000 \
    IEUM_LOGIN_MAX_FAILURES_PER_CLIENT=100000000 IEUM_HASH_QUEUE=100000
}
