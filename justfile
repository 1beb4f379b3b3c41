# Conveniences only: the README commands work without just.

# Start the server on embedded defaults (SQLite, local files).
run:
    cargo run --release

# The whole test suite, PostgreSQL and Redis included.
test:
    scripts/test

# Formatting and lints as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# The container image ieum:<version>, offline (FROM scratch; see scripts/image).
image:
    scripts/image

# Everything CI runs.
ci:
    .ci/run

# Fuzz the STOMP decoder (cargo install cargo-fuzz first). RUSTC_BOOTSTRAP lets the
# stable toolchain build with the sanitizer flags cargo-fuzz passes.
fuzz seconds="300":
    cd crates/ieum-stomp && RUSTC_BOOTSTRAP=1 cargo fuzz run decode -- -max_total_time={{seconds}}

# Fuzz the Engine.IO/Socket.IO decoders the same way.
fuzz-engineio seconds="300":
    cd crates/ieum-engineio && RUSTC_BOOTSTRAP=1 cargo fuzz run decode -- -max_total_time={{seconds}}

# Fan-out comparison with RabbitMQ Web-STOMP, transient and durable (see scripts/bench-compare).
bench:
    cargo build --release -p ieum-server -p ieum-bench
    scripts/bench-compare

# What PostgreSQL alone costs per durable send on this machine (see scripts/pg-commit-latency).
pg-commit-latency:
    cargo build --release -p ieum-bench
    scripts/pg-commit-latency

# Fuzz the HTTP API from its OpenAPI document (see scripts/fuzz-http).
fuzz-http examples="100":
    EXAMPLES={{examples}} scripts/fuzz-http
