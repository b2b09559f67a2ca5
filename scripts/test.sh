#!/usr/bin/env bash
# Quarry's test command: every test of both workspaces (the host and the wasm plugins).
#
# Tests that need a database read its URL from QUARRY_TEST_POSTGRES_URL / QUARRY_TEST_MYSQL_URL
# and say "skipped" when it is unset; SQLite needs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Shared plugin code (dialect, explainer and provider cores), tested natively.
native_crates=()
for dir in plugins/*-core plugins/provider-kit; do
  [ -f "$dir/Cargo.toml" ] || continue
  native_crates+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -n 1)")
done
if [ ${#native_crates[@]} -gt 0 ]; then
  echo "== plugin shared code (native)"
  cargo test --manifest-path plugins/Cargo.toml --target-dir target/plugins-native "${native_crates[@]}"
fi

# The host: unit tests, integration tests (which build and load the real plugins), doc tests.
echo "== host"
cargo test --workspace
