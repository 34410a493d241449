"""Trajectories of the reference's SimEnv and PerturbedSimEnv, for the native port's conformance test.

usage: python sim_trajectories.py OUT.jsonl META_SEED

For every sim and perturbed-sim env of the installed loopgym, every task (plus the default task and an
unknown one) and a seed list (fixed seeds plus seeds sampled from META_SEED), runs an episode
to the end — once with the env's own worker, once with an agent's output on every other
step — and writes one JSON line per episode: the reset observation, each step's
(observation, reward, done, info), and the mock LLM's token count.
"""

import json
import random
import sys

import loopgym

SIM_ENVS = [
    "loopbench/code-repair-v1",
    "loopbench/research-synthesis-v1",
    "loopbench/multi-agent-debate-v1",
    "sim/mock-llm-v1",
    # PerturbedSimEnv
    "loopbench/rag-retrieval-v1",
    "loopbench/hitl-gate-v1",
    "loopbench/safety-constrained-v1",
    # ComposedSimEnv: its branch seeds hash the branch ids, so run this script with a fixed
    # PYTHONHASHSEED and give the native env the same value.
    "loopbench/composed-swarm-v1",
]


def task_ids(env):
    path = getattr(env, "tasks_path", None)
    if not path:
        return []
    with open(path, encoding="utf-8") as fh:
        return [t["id"] for t in json.load(fh).get("tasks", [])]


def episode(env_id, task, seed, agent):
    env = loopgym.make(env_id, seed=seed)
    obs = env.reset(task_id=task, seed=seed)
    out = {"env": env_id, "task": task, "seed": seed, "agent": agent,
           "reset": obs.to_dict(), "steps": []}
    for n in range(100):
        action = {"output": f"agent answer {n} for {task or 'default'}: é \"q\" 'x'"} \
            if agent and n % 2 == 1 else None
        obs, reward, done, info = env.step(action)
        out["steps"].append({"obs": obs.to_dict(), "reward": reward, "done": done, "info": info})
        if done:
            break
    # One step after the end: the reference answers "already_done".
    obs, reward, done, info = env.step(None)
    out["after_done"] = {"obs": obs.to_dict(), "reward": reward, "done": done, "info": info}
    runtime = env._orch._runtime if hasattr(env, "_orch") else env._runtime
    out["tokens_used"] = runtime.llm.tokens_used
    return out


def main():
    path, meta_seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(meta_seed)
    seeds = [0, 1, 42, -3] + [rng.randrange(0, 2**40) for _ in range(6)]
    with open(path, "w", encoding="utf-8") as fh:
        for env_id in SIM_ENVS:
            tasks = task_ids(loopgym.make(env_id)) + ["", "no-such-task"]
            for task in tasks:
                for seed in seeds:
                    for agent in (False, True):
                        fh.write(json.dumps(episode(env_id, task, seed, agent)) + "\n")


if __name__ == "__main__":
    main()
