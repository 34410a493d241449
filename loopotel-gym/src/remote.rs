//! [`RemoteEnv`]: any Python LoopGym environment — the reference's (`replay/loopnet-v1`
//! included) or your own — driven from Rust through the JSON-lines bridge this crate ships
//! (`bridge/loopgym_bridge.py`, run with `python -c`). Feature `remote` (default).
//!
//! Every request has a deadline: a bridge that crashes, hangs or writes something that is
//! not a reply becomes an [`EnvError::Remote`] naming what happened (with the tail of its
//! stderr), and the process is killed — the runner is never left waiting. The process is
//! also killed when the env is dropped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), loopotel_gym::EnvError> {
//! use loopotel_gym::remote::{RemoteEnv, RemoteSpec};
//! use loopotel_gym::Env as _;
//!
//! let mut env = RemoteEnv::start(RemoteSpec::env("replay/loopnet-v1").python(".venv-ref/bin/python")).await?;
//! let obs = env.reset("default", Some(1)).await?;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use crate::env::{Action, Env, EnvError, Observation, Step};
use crate::episode::{EnvDescription, EpisodeEnv};

/// The bridge program.
pub const BRIDGE: &str = include_str!("../bridge/loopgym_bridge.py");

/// Longest reply line accepted (a bigger one is a protocol error).
const MAX_LINE: u64 = 16 << 20;

/// What to start: an env id for `loopgym.make`, or a factory `module:callable`.
#[derive(Debug, Clone)]
pub struct RemoteSpec {
    env: String,
    factory: Option<String>,
    kwargs: Value,
    python: PathBuf,
    envs: Vec<(String, String)>,
    timeout: Duration,
}

impl RemoteSpec {
    /// `loopgym.make(env_id)`.
    pub fn env(env_id: impl Into<String>) -> Self {
        Self {
            env: env_id.into(),
            factory: None,
            kwargs: json!({}),
            python: std::env::var_os("LOOPOTEL_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| "python3".into()),
            envs: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }

    /// Your own environment: `module:callable(**kwargs)` returns it (the module must be
    /// importable by that Python, e.g. through `PYTHONPATH`).
    pub fn factory(env_id: impl Into<String>, factory: impl Into<String>) -> Self {
        let mut spec = Self::env(env_id);
        spec.factory = Some(factory.into());
        spec
    }

    /// Keyword arguments for `make` / the factory.
    pub fn kwargs(mut self, kwargs: Value) -> Self {
        self.kwargs = kwargs;
        self
    }

    /// The interpreter (default `LOOPOTEL_PYTHON`, else `python3`).
    pub fn python(mut self, python: impl Into<PathBuf>) -> Self {
        self.python = python.into();
        self
    }

    /// An environment variable for the bridge process.
    pub fn env_var(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// The deadline of each request (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A Python environment behind the bridge (see the module docs).
#[derive(Debug)]
pub struct RemoteEnv {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Option<ChildStderr>,
    timeout: Duration,
    describe: EnvDescription,
    tasks: Vec<String>,
    done: bool,
    tokens: Option<u64>,
    broken: Option<String>,
}

impl RemoteEnv {
    /// Starts the bridge and makes the environment.
    pub async fn start(spec: RemoteSpec) -> Result<Self, EnvError> {
        let mut cmd = Command::new(&spec.python);
        cmd.arg("-u")
            .arg("-c")
            .arg(BRIDGE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &spec.envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| {
            EnvError::Remote(format!("cannot start {}: {e}", spec.python.display()))
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(EnvError::Remote("the bridge has no stdin/stdout".into()));
        };
        let stderr = child.stderr.take();
        let mut env = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            stderr,
            timeout: spec.timeout,
            describe: EnvDescription::default(),
            tasks: Vec::new(),
            done: false,
            tokens: None,
            broken: None,
        };
        let mut req = json!({"op": "make", "env": spec.env, "kwargs": spec.kwargs});
        if let Some(f) = &spec.factory {
            req["factory"] = json!(f);
        }
        let reply = env.request(req).await?;
        let d = &reply["describe"];
        env.describe = EnvDescription {
            env_id: d["env_id"].as_str().map(str::to_owned).or(Some(spec.env)),
            loop_name: d["loop_name"].as_str().unwrap_or("unknown-loop").to_owned(),
            goal_target: d["goal_target"].as_f64().unwrap_or(0.8),
            worker_id: d["worker_id"].as_str().map(str::to_owned),
            evaluator_id: d["evaluator_id"].as_str().map(str::to_owned),
        };
        env.tasks = reply["tasks"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(env)
    }

    /// The env's task ids (from its `tasks_path`, when it has one).
    pub fn task_ids(&self) -> &[String] {
        &self.tasks
    }

    /// Whether the episode has ended (as the env's `done` or the last step said).
    pub fn done(&self) -> bool {
        self.done
    }

    async fn stderr_tail(&mut self) -> String {
        let Some(mut err) = self.stderr.take() else {
            return String::new();
        };
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_millis(500), err.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf);
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    async fn fail(&mut self, what: String) -> EnvError {
        let _ = self.child.start_kill();
        let status = tokio::time::timeout(Duration::from_secs(2), self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let tail = self.stderr_tail().await;
        let msg = if tail.is_empty() {
            format!("{what}{status}")
        } else {
            format!("{what}{status}; stderr: {tail}")
        };
        self.broken = Some(msg.clone());
        EnvError::Remote(msg)
    }

    /// One request, one reply line, within the deadline.
    async fn request(&mut self, req: Value) -> Result<Value, EnvError> {
        if let Some(why) = &self.broken {
            return Err(EnvError::Remote(format!("the bridge is gone: {why}")));
        }
        let mut line = req.to_string();
        line.push('\n');
        let op = req["op"].as_str().unwrap_or("?").to_owned();
        let deadline = self.timeout;
        let exchange = async {
            self.stdin.write_all(line.as_bytes()).await?;
            self.stdin.flush().await?;
            let mut reply = String::new();
            let n = (&mut self.stdout)
                .take(MAX_LINE)
                .read_line(&mut reply)
                .await?;
            Ok::<_, std::io::Error>((n, reply))
        };
        let reply = match tokio::time::timeout(deadline, exchange).await {
            Err(_) => {
                return Err(self
                    .fail(format!(
                        "the bridge did not answer {op:?} within {deadline:?}"
                    ))
                    .await);
            }
            Ok(Err(e)) => {
                return Err(self
                    .fail(format!("the bridge pipe failed during {op:?}: {e}"))
                    .await);
            }
            Ok(Ok((0, _))) => {
                return Err(self.fail(format!("the bridge exited during {op:?}")).await);
            }
            Ok(Ok((_, text))) => text,
        };
        let value: Value = match serde_json::from_str(reply.trim_end()) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                let shown: String = reply.chars().take(120).collect();
                return Err(self
                    .fail(format!(
                        "the bridge answered {op:?} with something that is not a reply: {shown:?}"
                    ))
                    .await);
            }
        };
        if value["ok"] == json!(true) {
            Ok(value)
        } else {
            Err(EnvError::Remote(format!(
                "{op}: {}",
                value["error"].as_str().unwrap_or("the Python env failed")
            )))
        }
    }

    fn observation(v: &Value) -> Result<Observation, EnvError> {
        serde_json::from_value(v.clone()).map_err(|e| {
            EnvError::Remote(format!(
                "the bridge sent an observation that does not fit: {e}"
            ))
        })
    }
}

impl Env for RemoteEnv {
    async fn reset(&mut self, task_id: &str, seed: Option<i64>) -> Result<Observation, EnvError> {
        let reply = self
            .request(json!({"op": "reset", "task_id": task_id, "seed": seed}))
            .await?;
        self.done = reply["done"].as_bool().unwrap_or(false);
        self.tokens = reply["tokens"].as_u64();
        Self::observation(&reply["obs"])
    }

    async fn step(&mut self, action: Action) -> Result<Step, EnvError> {
        let action = match action {
            Action::Output(text) => json!({"output": text}),
            Action::EnvWorker => Value::Null,
        };
        let reply = self
            .request(json!({"op": "step", "action": action}))
            .await?;
        self.done = reply["done"].as_bool().unwrap_or(false);
        self.tokens = reply["tokens"].as_u64();
        Ok(Step {
            observation: Self::observation(&reply["obs"])?,
            reward: reply["reward"].as_f64().unwrap_or(0.0),
            done: self.done,
            info: reply["info"].as_object().cloned().unwrap_or_default(),
        })
    }

    async fn close(&mut self) {
        if self.broken.is_none() {
            let _ = self.request(json!({"op": "close"})).await;
        }
        let _ = self.child.start_kill();
    }
}

impl EpisodeEnv for RemoteEnv {
    fn describe(&self) -> EnvDescription {
        self.describe.clone()
    }

    fn tokens_used(&self) -> Option<u64> {
        self.tokens
    }

    fn is_done(&self) -> bool {
        self.done
    }
}
