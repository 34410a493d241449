"""loopotel-gym's bridge to Python LoopGym environments: JSON lines on stdin/stdout.

Requests (one JSON object per line) and replies ({"ok": true, ...} or {"ok": false,
"error": "..."}):

  {"op": "make", "env": "loopbench/code-repair-v1", "kwargs": {...}}
  {"op": "make", "factory": "my_module:make_env", "env": "my/env-v1", "kwargs": {...}}
      -> {"ok": true, "describe": {...}, "tasks": [...]}
  {"op": "reset", "task_id": "cr-001", "seed": 7}      -> {"ok": true, "obs": {...}, "done": false, "tokens": n|null}
  {"op": "step", "action": null | {"output": "..."}}   -> {"ok": true, "obs": {...}, "reward": r, "done": d, "info": {...}, "tokens": n|null}
  {"op": "close"}                                      -> {"ok": true}

The protocol owns the process's stdout: anything the environment prints goes to stderr.
"""

import importlib
import json
import sys
import traceback

PROTOCOL = sys.stdout
sys.stdout = sys.stderr  # environment code that prints must not corrupt the protocol


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        return repr(value)


def _obs(obs):
    if hasattr(obs, "to_dict"):
        return _jsonable(obs.to_dict())
    return _jsonable(dict(obs))


def _tokens(env):
    runtime = getattr(env, "_runtime", None) or getattr(getattr(env, "_orch", None), "_runtime", None)
    llm = getattr(runtime, "llm", None)
    tokens = getattr(llm, "tokens_used", None)
    return tokens if isinstance(tokens, int) else None


def _describe(env, env_id):
    spec = getattr(env, "spec", None) or getattr(env, "orchestrator_spec", None) or {}
    workers = spec.get("workers") or []
    evaluators = spec.get("evaluators") or []
    goal = 0.8
    term = spec.get("termination_conditions")
    found = False
    if isinstance(term, dict):
        for success in term.get("success") or []:
            if success.get("value") is not None:
                goal, found = float(success["value"]), True
                break
    if not found:
        for ev in evaluators:
            rubric = ev.get("rubric") or {}
            if rubric.get("pass_threshold") is not None:
                goal = float(rubric["pass_threshold"])
                break
    return {
        "env_id": getattr(env, "env_id", env_id),
        "loop_name": str(spec.get("loop_name", "unknown-loop")),
        "goal_target": goal,
        "worker_id": str(workers[0]["id"]) if workers and workers[0].get("id") else None,
        "evaluator_id": str(evaluators[0]["id"]) if evaluators and evaluators[0].get("id") else None,
    }


def _tasks(env):
    path = getattr(env, "tasks_path", None)
    if not path:
        return []
    try:
        with open(path, encoding="utf-8") as fh:
            return [str(t["id"]) for t in json.load(fh).get("tasks", []) if t.get("id")]
    except (OSError, ValueError):
        return []


def handle(env, req):
    op = req.get("op")
    if op == "make":
        kwargs = req.get("kwargs") or {}
        if req.get("factory"):
            module, _, name = req["factory"].partition(":")
            env = getattr(importlib.import_module(module), name)(**kwargs)
        else:
            import loopgym

            env = loopgym.make(req["env"], **kwargs)
        return env, {"describe": _describe(env, req.get("env")), "tasks": _tasks(env)}
    if env is None:
        raise RuntimeError("no environment: send a make request first")
    if op == "reset":
        obs = env.reset(task_id=req.get("task_id") or "", seed=req.get("seed"))
        return env, {"obs": _obs(obs), "done": bool(env.done), "tokens": _tokens(env)}
    if op == "step":
        obs, reward, done, info = env.step(req.get("action"))
        return env, {
            "obs": _obs(obs),
            "reward": float(reward),
            "done": bool(done) or bool(env.done),
            "info": _jsonable(info),
            "tokens": _tokens(env),
        }
    if op == "close":
        close = getattr(env, "close", None)
        if close:
            close()
        return env, {}
    raise ValueError(f"unknown op {op!r}")


def main():
    env = None
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            env, reply = handle(env, json.loads(line))
            reply["ok"] = True
        except Exception as exc:  # reported to the Rust side, never a dead bridge
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                     "traceback": traceback.format_exc(limit=5)}
        PROTOCOL.write(json.dumps(reply) + "\n")
        PROTOCOL.flush()


if __name__ == "__main__":
    main()
