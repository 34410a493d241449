#!/usr/bin/env bash
# Episodes per second: the native traced SimEnv (`loopotel run`) vs the Python reference's
# `run_traced_episode`, over the same envs, tasks and seeds, both single-threaded and both
# writing every trace to JSONL; then peak memory of `loopotel run` for 1 000 vs 10 000
# episodes (streamed to JSONL, it should stay flat).
#
# usage: scripts/gym_speed.sh [SEEDS_PER_TASK]   (default 50; needs the reference venv)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seeds=${1:-50}
py=$(bash scripts/setup-python-ref.sh)
cargo build --release --locked -q -p loopotel-cli
bin=$root/target/release/loopotel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
envs=(loopbench/code-repair-v1 loopbench/research-synthesis-v1 loopbench/multi-agent-debate-v1 sim/mock-llm-v1)

py_json=$("$py" - "$seeds" "$tmp/py.jsonl" "${envs[@]}" <<'PY'
import json, sys, time
import loopgym
from loopotel.integrations.loopgym import run_traced_episode
seeds, out, envs = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
n = 0
start = time.perf_counter()
with open(out, "w") as fh:
    for env_id in envs:
        env = loopgym.make(env_id)
        tasks = [""]
        if getattr(env, "tasks_path", None):
            tasks = [t["id"] for t in json.load(open(env.tasks_path))["tasks"]]
        for task in tasks:
            for seed in range(seeds):
                _, trace = run_traced_episode(loopgym.make(env_id), task_id=task, seed=seed)
                fh.write(json.dumps(trace) + "\n")
                n += 1
print(json.dumps({"episodes": n, "seconds": time.perf_counter() - start}))
PY
)
rs_json=$(LOOPOTEL_PYTHON="$py" "$bin" run "${envs[@]}" --seeds "0..$seeds" --concurrency 1 --json --out "$tmp/rs.jsonl")

read -r py_n py_s < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["episodes"], d["seconds"])' "$py_json")
read -r rs_n rs_s < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["episodes"], d["seconds"])' "$rs_json")
python3 - "$py_n" "$py_s" "$rs_n" "$rs_s" <<'PY'
import sys
pn, ps, rn, rs = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
print("| runner | episodes | seconds | episodes/s |")
print("|---|---|---|---|")
print(f"| Python `run_traced_episode` (loopgym + loopotel) | {pn} | {ps:.2f} | {pn/ps:.0f} |")
print(f"| `loopotel run` (native SimEnv, 1 thread) | {rn} | {rs:.2f} | {rn/rs:.0f} |")
print(f"\nnative / Python: {(rn/rs)/(pn/ps):.0f}x episodes per second")
PY

echo
echo "| episodes streamed to JSONL | peak RSS |"
echo "|---|---|"
for n in 1000 10000; do
  /usr/bin/time -f "%M" -o "$tmp/rss" "$bin" run builtin/triage-v1 --tasks tk-001 --seeds "0..$n" --json \
    --out "$tmp/mem-$n.jsonl" >/dev/null
  echo "| $n | $(( $(cat "$tmp/rss") / 1024 )) MiB |"
done
