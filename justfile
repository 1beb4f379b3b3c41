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

# Everything CI runs.
ci:
    .ci/run
