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

# clamd for the virus-scanner suite (crates/ieum-clamd/tests). No signature
# download is possible on the test machines, so it runs offline from a private
# directory whose database is one line: the EICAR test file's MD5.
CLAMD_DIR="${TMPDIR:-/tmp}/ieum-clamd"
CLAMD_URL_FOR_TESTS="${TEST_CLAMD_URL:-tcp://127.0.0.1:3311}"
CLAMD_UNIX_URL_FOR_TESTS="${TEST_CLAMD_UNIX_URL:-unix://$CLAMD_DIR/clamd.sock}"
# Its StreamMaxLength; crates/ieum-clamd/tests/clamd.rs has the same (CLAMD_STREAM_MAX).
CLAMD_STREAM_MAX=1M
EICAR_TEST_FILE='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'

clamd_pings() { # host port: clamd answers PING with PONG
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "zPING\0" >&3 &&
    IFS= read -r -d "" reply <&3 && [ "$reply" = PONG ]' _ "$1" "$2" 2>/dev/null
}

clamd_bin() { # Debian puts clamd in /usr/sbin, which a user's PATH may lack
  command -v clamd 2>/dev/null || { [ -x /usr/sbin/clamd ] && echo /usr/sbin/clamd; }
}

install_clamd() {
  if [ "$(id -u)" != 0 ]; then
    echo "scripts/test: clamd is not installed, and installing it needs root. Run:" >&2
    echo "  sudo apt-get install -y --no-install-recommends clamav-daemon" >&2
    return 1
  fi
  echo "scripts/test: installing clamd (Debian clamav-daemon)" >&2
  local install="apt-get install -y --no-install-recommends clamav-daemon"
  DEBIAN_FRONTEND=noninteractive $install >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive $install >&2; }
}

test_clamd_config() { # host port
  cat <<EOF
# Written by scripts/services.sh (ensure_clamd) for the test suite.
DatabaseDirectory $CLAMD_DIR/db
TemporaryDirectory $CLAMD_DIR/tmp
TCPAddr $1
TCPSocket $2
LocalSocket ${CLAMD_UNIX_URL_FOR_TESTS#unix://}
PidFile $CLAMD_DIR/clamd.pid
LogFile $CLAMD_DIR/clamd.log
LogTime yes
Foreground no
StreamMaxLength $CLAMD_STREAM_MAX
EOF
}

stop_test_clamd() { # the one this script started, found by its pid file
  local pid i
  pid=$(cat "$CLAMD_DIR/clamd.pid" 2>/dev/null) || return 0
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = clamd ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    [ -e "/proc/$pid" ] || return 0
    sleep 0.1
  done
}

start_test_clamd() { # host port
  local clamd size md5 begun i
  clamd=$(clamd_bin) || { install_clamd && clamd=$(clamd_bin); } || return 1
  mkdir -p "$CLAMD_DIR/db" "$CLAMD_DIR/tmp" || return 1
  size=$(printf '%s' "$EICAR_TEST_FILE" | wc -c)
  if [ "$size" -ne 68 ]; then
    echo "scripts/test: the EICAR test string is $size bytes, not 68." >&2
    return 1
  fi
  md5=$(printf '%s' "$EICAR_TEST_FILE" | md5sum | cut -d' ' -f1)
  echo "$md5:$size:Eicar-Test-Signature" >"$CLAMD_DIR/db/eicar.hdb"
  test_clamd_config "$1" "$2" >"$CLAMD_DIR/clamd.conf"
  rm -f "${CLAMD_UNIX_URL_FOR_TESTS#unix://}"
  echo "scripts/test: starting clamd on $1:$2 from $CLAMD_DIR" >&2
  begun=$(date +%s%N)
  if ! "$clamd" --config-file="$CLAMD_DIR/clamd.conf" >"$CLAMD_DIR/start.log" 2>&1; then
    echo "scripts/test: clamd did not start:" >&2
    tail -n 20 "$CLAMD_DIR/start.log" "$CLAMD_DIR/clamd.log" >&2 2>/dev/null
    return 1
  fi
  for ((i = 0; i < 600; i++)); do
    if clamd_pings "$1" "$2"; then
      echo "scripts/test: clamd answers PING after $((($(date +%s%N) - begun) / 1000000)) ms" >&2
      return 0
    fi
    sleep 0.1
  done
  echo "scripts/test: clamd did not answer PING within 60 s; its log:" >&2
  tail -n 20 "$CLAMD_DIR/clamd.log" >&2 2>/dev/null
  return 1
}

ensure_clamd() {
  local host port socket="${CLAMD_UNIX_URL_FOR_TESTS#unix://}"
  read -r host port < <(hostport "$CLAMD_URL_FOR_TESTS" 3310)
  if is_local "$host"; then
    # A test clamd started with other settings (limit, port) is replaced.
    if [ -f "$CLAMD_DIR/clamd.conf" ] &&
      [ "$(test_clamd_config "$host" "$port")" != "$(cat "$CLAMD_DIR/clamd.conf")" ]; then
      stop_test_clamd
    fi
    clamd_pings "$host" "$port" || start_test_clamd "$host" "$port" || true
  fi
  if ! clamd_pings "$host" "$port"; then
    echo "scripts/test: clamd does not answer PING at $host:$port." >&2
    echo "  scripts/test starts one from $CLAMD_DIR when clamd is installed, and installs it when root" >&2
    echo "  (Debian: apt-get install -y --no-install-recommends clamav-daemon); or set TEST_CLAMD_URL." >&2
    echo "  The clamd suite is never skipped." >&2
    exit 1
  fi
  if [ ! -S "$socket" ]; then
    echo "scripts/test: clamd answers at $host:$port but has no unix socket at $socket." >&2
    echo "  Set TEST_CLAMD_UNIX_URL to its LocalSocket (unix:///path). The clamd suite is never skipped." >&2
    exit 1
  fi
}

# An S3-compatible server that checks SigV4 signatures, for the S3 store's
# suites: s3s-fs (crates.io), built once with cargo into a tools directory and
# started on a private root. Each test makes its own bucket (a directory of
# the root) and removes it. The key pair is the suite's own, not a secret.
S3_TOOLS_DIR="${IEUM_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ieum-tools}"
S3S_FS_VERSION=0.14.1
S3_DIR="${TMPDIR:-/tmp}/ieum-s3"
S3_ENDPOINT_FOR_TESTS="${TEST_S3_ENDPOINT:-http://127.0.0.1:8014}"
S3_ROOT_FOR_TESTS="${TEST_S3_ROOT:-$S3_DIR/data}"
S3_ACCESS_KEY_FOR_TESTS="${TEST_S3_ACCESS_KEY:-ieum-test-key}"
S3_SECRET_KEY_FOR_TESTS="${TEST_S3_SECRET_KEY:-ieum-test-secret-not-a-secret}"

s3s_fs_bin() {
  local bin="$S3_TOOLS_DIR/bin/s3s-fs"
  if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "s3s-fs $S3S_FS_VERSION" ]; then
    echo "$bin"
    return 0
  fi
  echo "scripts/test: building s3s-fs $S3S_FS_VERSION (crates.io) into $S3_TOOLS_DIR, once" >&2
  cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked \
    --root "$S3_TOOLS_DIR" >&2 || return 1
  echo "$bin"
}

stop_test_s3() {
  local pid
  pid=$(cat "$S3_DIR/s3s-fs.pid" 2>/dev/null) || return 0
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = s3s-fs ] || return 0
  kill "$pid" 2>/dev/null || true
}

ensure_s3() {
  local host port bin
  read -r host port < <(hostport "$S3_ENDPOINT_FOR_TESTS" 8014)
  if is_local "$host" && ! can_connect "$host" "$port"; then
    bin=$(s3s_fs_bin) || {
      echo "scripts/test: s3s-fs could not be built (cargo install s3s-fs)." >&2
      exit 1
    }
    mkdir -p "$S3_ROOT_FOR_TESTS"
    echo "scripts/test: starting s3s-fs on $host:$port from $S3_ROOT_FOR_TESTS" >&2
    # Started from its own directory: s3s-fs resolves paths against its working
    # directory, and a checkout it was started from may be deleted while it runs
    # (every request then failed with 500).
    (
      cd "$S3_DIR"
      RUST_LOG=warn nohup "$bin" --host "$host" --port "$port" \
        --access-key "$S3_ACCESS_KEY_FOR_TESTS" --secret-key "$S3_SECRET_KEY_FOR_TESTS" \
        "$S3_ROOT_FOR_TESTS" >"$S3_DIR/s3s-fs.log" 2>&1 &
      echo $! >"$S3_DIR/s3s-fs.pid"
    )
    wait_for "$host" "$port" 30 || true
  fi
  if ! can_connect "$host" "$port"; then
    echo "scripts/test: no S3-compatible server answers at $host:$port." >&2
    echo "  scripts/test builds and starts s3s-fs (cargo install s3s-fs --features binary);" >&2
    echo "  or set TEST_S3_ENDPOINT, TEST_S3_ROOT (its data directory), TEST_S3_ACCESS_KEY and" >&2
    echo "  TEST_S3_SECRET_KEY. The S3 suites are never skipped." >&2
    tail -n 20 "$S3_DIR/s3s-fs.log" >&2 2>/dev/null
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

# A real browser for the web client's suites: Debian's Chromium, driven by
# playwright-core from e2e/node_modules (which never downloads a browser).
# Installed when missing and run as root; otherwise the suite cannot run.
CHROMIUM_FOR_TESTS="${CHROMIUM:-/usr/bin/chromium}"
ensure_chromium() {
  if [ ! -x "$CHROMIUM_FOR_TESTS" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test: installing Debian's chromium for the browser suites" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2; } || true
  fi
  if ! "$CHROMIUM_FOR_TESTS" --version >/dev/null 2>&1; then
    echo "scripts/test: no Chromium at $CHROMIUM_FOR_TESTS for the browser suites." >&2
    echo "  Debian: apt-get install -y chromium (scripts/test does it when root), or set CHROMIUM=/path." >&2
    echo "  The browser suites are never skipped." >&2
    exit 1
  fi
}

# A Docker engine for the container suites (scripts/image, testcontainers):
# Debian's docker.io, installed when missing and started when stopped (as
# root). IEUM_TEST_SKIP_DOCKER=1 is the documented opt-out for a machine
# where Docker cannot run at all: those suites then say that they skip.
ensure_docker() {
  if [ -n "${IEUM_TEST_SKIP_DOCKER:-}" ]; then
    echo "scripts/test: IEUM_TEST_SKIP_DOCKER is set: the container suites will skip, saying so" >&2
    return 0
  fi
  if docker info >/dev/null 2>&1; then
    return 0 # an engine answers (a local one, or DOCKER_HOST's)
  fi
  if ! command -v dockerd >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test: installing Debian's docker.io for the container suites" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io >&2; } || true
  fi
  if ! docker info >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "scripts/test: starting dockerd (log: /tmp/ieum-dockerd.log)" >&2
    nohup dockerd >/tmp/ieum-dockerd.log 2>&1 &
    local i
    for ((i = 0; i < 120; i++)); do
      docker info >/dev/null 2>&1 && break
      sleep 0.25
    done
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "scripts/test: no Docker engine answers for the container suites (scripts/image, testcontainers)." >&2
    echo "  Debian: apt-get install docker.io, then start dockerd as root (scripts/test does both when root)." >&2
    echo "  Without Docker at all, IEUM_TEST_SKIP_DOCKER=1 skips those suites, saying so." >&2
    exit 1
  fi
}
