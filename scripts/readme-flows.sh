#!/usr/bin/env bash
# The README's own flows on this checkout, as a new user runs them: npm start, the examples, aiaas predict,
# aiaas train, aiaas keys. Then `git status` must be clean (what they write is git-ignored), and the files
# they wrote are removed again.
set -euo pipefail
cd "$(dirname "$0")/.."
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
PORT=$(free_port)
HTTP=$(free_port)
export AIAAS_ADDRESS="127.0.0.1:$PORT"
log=$(mktemp)
npm start -- --host 127.0.0.1 --port "$PORT" --http-port "$HTTP" >"$log" 2>&1 &
server=$!
stop() { kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$HTTP/v2/health/ready" >/dev/null; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$log"; echo "readme-flows: npm start exited" >&2; exit 1; fi
  sleep 0.2
done
curl -sf "http://127.0.0.1:$HTTP/v2/health/ready" >/dev/null || { cat "$log"; echo "readme-flows: the server never became ready" >&2; exit 1; }
step() { echo "readme-flows: $*"; "$@"; }
step npm run --silent example:quickstart
EXAMPLE_COUNT=300 step npm run --silent example:predict-stream
EXAMPLE_EPOCHS=1 step npm run --silent example:train-mnist
step npx aiaas models
step npx aiaas predict mnist-linear --input image=examples/requests/digit.json --output probabilities >/dev/null
step npx aiaas predict mnist-linear --input image=examples/requests/predict-digit.json >/dev/null
step npx aiaas train --spec examples/train/spec.json --data examples/train/rows.jsonl
step npx aiaas jobs list
step npx aiaas keys create --store keys.json --tenant ops --roles admin --name "first admin" --quiet >/dev/null
stop
trap - EXIT
test -d models/mnist-cnn/2 || { echo "readme-flows: train-mnist published no version into models/" >&2; exit 1; }
dirty=$(git status --porcelain)
if [ -n "$dirty" ]; then
  echo "readme-flows: the README's flows left git status dirty:" >&2
  echo "$dirty" >&2
  exit 1
fi
echo "readme-flows: git status is clean"
# Remove what the flows wrote (git-ignored files only) so a later run starts from the shipped models.
git clean -fdqX -- models models.tenants keys.json
