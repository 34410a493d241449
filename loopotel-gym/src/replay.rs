//! `replay/loopnet-v1`, natively: LoopNet `ln/record-v1` trajectories replayed step by step,
//! with the reference `ReplayEnv`'s observations, rewards, `done` flags, infos and
//! termination — including its choice of record for a seed, which uses Python's
//! `random.Random(seed).choice` (Mersenne Twister), reproduced here.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::env::{Action, EnvError, Info, Observation, Step};
use crate::episode::EnvDescription;

/// Python's `random.Random`: MT19937 seeded as CPython seeds it from an integer.
struct PyRandom {
    mt: [u32; 624],
    index: usize,
}

impl PyRandom {
    fn new(seed: i64) -> Self {
        let mut r = PyRandom {
            mt: [0; 624],
            index: 624,
        };
        // `init_by_array` with the absolute value's 32-bit words, least significant first.
        let mut n = seed.unsigned_abs();
        let mut key = Vec::new();
        loop {
            key.push((n & 0xffff_ffff) as u32);
            n >>= 32;
            if n == 0 {
                break;
            }
        }
        r.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..624.max(key.len()) {
            let prev = r.mt[i - 1] ^ (r.mt[i - 1] >> 30);
            r.mt[i] = (r.mt[i] ^ prev.wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= 624 {
                r.mt[0] = r.mt[623];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..623 {
            let prev = r.mt[i - 1] ^ (r.mt[i - 1] >> 30);
            r.mt[i] = (r.mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                r.mt[0] = r.mt[623];
                i = 1;
            }
        }
        r.mt[0] = 0x8000_0000;
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..624 {
            let prev = self.mt[i - 1] ^ (self.mt[i - 1] >> 30);
            self.mt[i] = 1_812_433_253u32.wrapping_mul(prev).wrapping_add(i as u32);
        }
        self.index = 624;
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for k in 0..624 {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % 624] & 0x7fff_ffff);
                let mut v = self.mt[(k + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.mt[k] = v;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `_randbelow(n)` for `0 < n < 2³²`: rejection sampling on `getrandbits(bit_length)`.
    fn below(&mut self, n: usize) -> usize {
        let k = usize::BITS - n.leading_zeros();
        loop {
            let r = (self.next_u32() >> (32 - k.min(32))) as usize;
            if r < n {
                return r;
            }
        }
    }
}

/// One replayed step, as the reference's `record_to_trajectory` makes it.
#[derive(Debug, Clone)]
struct ReplayStep {
    iteration: Value,
    output: String,
    quality: f64,
    failure_codes: Value,
}

fn py_repr_int(v: &Value) -> String {
    match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        other => other.to_string(),
    }
}

fn record_to_trajectory(record: &Value) -> Vec<ReplayStep> {
    let objective = match &record["objective"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let head: String = objective.chars().take(80).collect();
    record["trajectory"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|step| {
                    let goal = step
                        .get("goal_score")
                        .or_else(|| step.get("primary_quality"))
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0);
                    ReplayStep {
                        iteration: step.get("iteration").cloned().unwrap_or(Value::Null),
                        output: format!(
                            "[loopnet replay] {head}… iter={} goal={goal:.3}",
                            py_repr_int(step.get("iteration").unwrap_or(&Value::Null))
                        ),
                        quality: goal,
                        failure_codes: step
                            .get("failure_codes")
                            .filter(|v| !v.is_null())
                            .cloned()
                            .unwrap_or_else(|| json!([])),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn is_captured(record: &Value) -> bool {
    let tagged = record["metadata"]["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x == "captured"));
    tagged || record["source"] == "case_study"
}

/// The reference's `ReplayEnv` over a LoopNet records file.
#[derive(Debug, Clone)]
pub struct ReplayEnv {
    env_id: String,
    records: std::sync::Arc<Vec<Value>>,
    record: Option<usize>,
    trajectory: Vec<ReplayStep>,
    index: usize,
    task_id: String,
    done: bool,
    obs: Option<Observation>,
}

impl ReplayEnv {
    /// Replays the records of a LoopNet JSONL file (`ln/record-v1`, one per line).
    pub fn from_records_file(env_id: &str, path: &Path) -> Result<Self, EnvError> {
        let text = std::fs::read_to_string(path).map_err(|e| EnvError::Records {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line).map_err(|e| EnvError::Records {
                path: format!("{}:{}", path.display(), i + 1),
                why: format!("invalid JSON — {e}"),
            })?;
            records.push(v);
        }
        Ok(Self {
            env_id: env_id.to_owned(),
            records: std::sync::Arc::new(records),
            record: None,
            trajectory: Vec::new(),
            index: 0,
            task_id: "default".to_owned(),
            done: false,
            obs: None,
        })
    }

    fn select(&self, task_id: &str, seed: Option<i64>) -> Option<usize> {
        if self.records.is_empty() {
            return None;
        }
        if task_id.starts_with("ln-")
            && let Some(i) = self.records.iter().position(|r| r["record_id"] == task_id)
        {
            return Some(i);
        }
        if !task_id.is_empty()
            && task_id != "default"
            && let Some(i) = self.records.iter().position(|r| r["loop_name"] == task_id)
        {
            return Some(i);
        }
        Some(PyRandom::new(seed.unwrap_or(0)).below(self.records.len()))
    }

    fn current(&self) -> Option<&Value> {
        self.record.and_then(|i| self.records.get(i))
    }

    fn objective(&self) -> String {
        match self.current().map(|r| &r["objective"]) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "Replay LoopNet trajectory".to_owned(),
            Some(other) => other.to_string(),
        }
    }

    /// Starts an episode: the record whose id or loop name is `task_id`, else one chosen
    /// by `seed` as the reference chooses it.
    pub fn reset(&mut self, task_id: &str, seed: Option<i64>) -> Result<Observation, EnvError> {
        self.task_id = if task_id.is_empty() {
            "default".to_owned()
        } else {
            task_id.to_owned()
        };
        self.index = 0;
        self.done = false;
        self.record = self.select(&self.task_id, seed);
        self.trajectory = self.current().map(record_to_trajectory).unwrap_or_default();
        if let Some(r) = self.current() {
            self.task_id = match &r["record_id"] {
                Value::String(s) => s.clone(),
                Value::Null => self.task_id.clone(),
                other => other.to_string(),
            };
        }
        if self.trajectory.is_empty() {
            self.trajectory = [
                (1, "replay fallback step 1", 0.5),
                (2, "replay fallback step 2", 0.85),
            ]
            .into_iter()
            .map(|(n, out, q)| ReplayStep {
                iteration: json!(n),
                output: out.to_owned(),
                quality: q,
                failure_codes: json!([]),
            })
            .collect();
        }
        let first = self.trajectory[0].clone();
        let meta = self.current().cloned().unwrap_or(Value::Null);
        let mut info = Map::new();
        info.insert("mode".into(), json!("replay"));
        info.insert("total_steps".into(), json!(self.trajectory.len()));
        info.insert("record_id".into(), meta["record_id"].clone());
        info.insert("outcome".into(), meta["outcome"].clone());
        info.insert("source".into(), meta["source"].clone());
        info.insert(
            "captured".into(),
            json!(!meta.is_null() && is_captured(&meta)),
        );
        info.insert(
            "les_observed".into(),
            meta["les_observed"]["les_normalized"].clone(),
        );
        info.insert(
            "env_id".into(),
            meta["loop_spec"]["extensions"]["env_id"].clone(),
        );
        let obs = Observation {
            task_id: self.task_id.clone(),
            iteration: first.iteration.as_u64().unwrap_or(1),
            output: first.output,
            quality_score: first.quality,
            objective: self.objective(),
            done: false,
            info,
        };
        self.obs = Some(obs.clone());
        Ok(obs)
    }

    /// The next step of the trajectory (the action is ignored: a replay does what was
    /// recorded).
    pub fn step(&mut self, _action: &Action) -> Result<Step, EnvError> {
        self.index += 1;
        if self.index >= self.trajectory.len() {
            self.done = true;
            let obs = self.obs.clone().unwrap_or_else(|| Observation {
                task_id: self.task_id.clone(),
                objective: "Replay LoopNet trajectory".to_owned(),
                done: true,
                ..Observation::default()
            });
            let mut info = Info::new();
            info.insert("reason".into(), json!("trajectory_exhausted"));
            return Ok(Step {
                observation: obs,
                reward: 0.0,
                done: true,
                info,
            });
        }
        let step = self.trajectory[self.index].clone();
        self.done = self.index >= self.trajectory.len() - 1;
        let meta = self.current().cloned().unwrap_or(Value::Null);
        let goal_target = meta["metadata"]["goal_target"].as_f64().unwrap_or(0.0);
        let success = meta["outcome"] == "success" || step.quality >= goal_target;
        let mut obs_info = Map::new();
        obs_info.insert("mode".into(), json!("replay"));
        obs_info.insert("step_index".into(), json!(self.index));
        obs_info.insert("record_id".into(), meta["record_id"].clone());
        obs_info.insert("failure_codes".into(), step.failure_codes.clone());
        obs_info.insert(
            "captured".into(),
            json!(!meta.is_null() && is_captured(&meta)),
        );
        obs_info.insert("success".into(), json!(self.done && success));
        let obs = Observation {
            task_id: self.task_id.clone(),
            iteration: step.iteration.as_u64().unwrap_or(self.index as u64 + 1),
            output: step.output,
            quality_score: step.quality,
            objective: self.objective(),
            done: self.done,
            info: obs_info,
        };
        self.obs = Some(obs.clone());
        let mut info = Info::new();
        info.insert("step_index".into(), json!(self.index));
        if self.done {
            info.insert("success".into(), json!(success));
            let reason = match &meta["termination_reason"] {
                Value::Null => json!("trajectory_exhausted"),
                other => other.clone(),
            };
            info.insert("termination_reason".into(), reason);
        }
        Ok(Step {
            observation: obs,
            reward: step.quality,
            done: self.done,
            info,
        })
    }

    /// Whether the episode has ended.
    pub fn done(&self) -> bool {
        self.done
    }

    /// The records replayed.
    pub fn records(&self) -> usize {
        self.records.len()
    }

    /// What a traced episode records of this env: its id, the chosen record's loop name
    /// (`loopnet-replay` before a reset) and goal target.
    pub fn describe(&self) -> EnvDescription {
        let meta = self.current();
        EnvDescription {
            env_id: Some(self.env_id.clone()),
            loop_name: meta
                .and_then(|r| r["loop_name"].as_str())
                .unwrap_or("loopnet-replay")
                .to_owned(),
            goal_target: meta
                .and_then(|r| r["metadata"]["goal_target"].as_f64())
                .unwrap_or(loopotel::les::DEFAULT_GOAL_TARGET),
            worker_id: Some("loopnet-replay".to_owned()),
            evaluator_id: Some("loopnet-record".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_random_choice_is_reproduced() {
        // random.Random(0).choice(range(500)), (1) … computed with CPython 3.12.
        let picks: Vec<usize> = [0i64, 1, 2, 42, -7, 1 << 40]
            .iter()
            .map(|s| PyRandom::new(*s).below(500))
            .collect();
        assert_eq!(picks, vec![432, 68, 489, 327, 165, 53]);
    }
}
