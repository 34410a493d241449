"""Generate LTF traces with the Python reference (`loopotel` + `loopgym` from PyPI).

Used by the interop tests: they run this script live, then parse, validate and compare
what it writes. Two kinds of traces, one JSONL file each:

  episodes.jsonl  run_traced_episode over every loopgym env, several tasks, sampled seeds
  manual.jsonl    the manual LoopTracer API with randomized scores/targets/tokens; each
                  document's metadata["case"] holds the exact inputs so Rust can replay them

Usage: python reference_traces.py OUT_DIR [--episodes N] [--cases N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path


def gen_episodes(out: Path, per_env: int, rng: random.Random) -> int:
    import loopgym
    from loopotel.integrations.loopgym import run_traced_episode

    written = 0
    with out.open("w", encoding="utf-8") as fh:
        for env_id in loopgym.list_envs():
            try:
                env = loopgym.make(env_id)
            except Exception as exc:  # an env that needs data we do not have
                print(f"skip {env_id}: {exc}", file=sys.stderr)
                continue
            tasks = []
            tasks_path = getattr(env, "tasks_path", None)
            if tasks_path and Path(tasks_path).exists():
                with open(tasks_path, encoding="utf-8") as th:
                    tasks = [t["id"] for t in json.load(th).get("tasks", []) if t.get("id")]
            # "" too: the reference then writes task_id null and fails its own schema.
            tasks.append("")
            for i in range(per_env):
                task = tasks[i % len(tasks)]
                seed = rng.randrange(0, 2**31)
                try:
                    env = loopgym.make(env_id)
                    result, trace = run_traced_episode(env, task_id=task, seed=seed)
                except Exception as exc:
                    print(f"skip {env_id} task={task} seed={seed}: {exc}", file=sys.stderr)
                    continue
                trace["metadata"]["episode"] = {"env": env_id, "task": task, "seed": seed}
                fh.write(json.dumps(trace, separators=(",", ":")) + "\n")
                written += 1
    return written


def score(rng: random.Random) -> float:
    pick = rng.random()
    if pick < 0.1:
        return rng.choice([0.0, 1.0, 0.8, 0.4, 0.03125, 0.5, 1.5, -0.25])
    if pick < 0.2:
        return round(rng.random(), rng.randint(1, 6))
    return rng.random() * 1.2


def gen_manual(out: Path, cases: int, rng: random.Random) -> int:
    from loopotel.tracer import LoopTracer

    with out.open("w", encoding="utf-8") as fh:
        for c in range(cases):
            target = rng.choice([0.8, 0.8, 0.5, 1.0, 0.95, 0.0, -1.0, 0.7])
            n = rng.choice([1, 2, 3, 5, 8, 13, 40])
            vary_target = rng.random() < 0.15
            iterations = []
            for i in range(1, n + 1):
                it = {"iteration": i, "goal_score": score(rng), "tokens_delta": rng.randrange(0, 5000)}
                if vary_target:
                    it["goal_target"] = rng.choice([0.5, 0.8, 0.9])
                if rng.random() < 0.5:
                    it["cost_usd"] = round(rng.random() / 100, 6)
                if rng.random() < 0.7:
                    it["latency_ms"] = round(rng.random() * 2000, 2)
                if rng.random() < 0.8:
                    it["worker_id"] = rng.choice(["writer", "implementer", "w-1", ""])
                if rng.random() < 0.8:
                    it["evaluator_id"] = rng.choice(["critic", "test_runner", "judge", ""])
                iterations.append(it)
            case = {
                "loop_name": rng.choice(["manual-loop", "refine-loop", "ünïcode-lööp"]),
                "env_id": rng.choice([None, "manual/env-v1"]),
                "task_id": rng.choice([None, f"task-{c}"]),
                "goal_target": target,
                "iterations": iterations,
                "outcome": rng.choice(["success", "failure", "partial", "unknown"]),
                "termination_reason": rng.choice(["", "max_iterations", "quality_threshold"]),
            }
            tracer = LoopTracer(
                loop_name=case["loop_name"],
                env_id=case["env_id"],
                task_id=case["task_id"],
                goal_target=target,
            )
            tracer.metadata["case"] = case
            with tracer:
                for it in iterations:
                    tracer.emit_iteration(**it)
                tracer.finish(outcome=case["outcome"], termination_reason=case["termination_reason"])
            fh.write(json.dumps(tracer.build_trace(), separators=(",", ":")) + "\n")
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=6, help="episodes per env")
    parser.add_argument("--cases", type=int, default=200, help="manual-API traces")
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"reference_traces seed={seed}", file=sys.stderr)
    rng = random.Random(seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    e = gen_episodes(args.out_dir / "episodes.jsonl", args.episodes, rng)
    m = gen_manual(args.out_dir / "manual.jsonl", args.cases, rng)
    print(json.dumps({"seed": seed, "episodes": e, "manual": m}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
