//! The traced episode runner with environments that fail: an error or a panic in `step`
//! ends the episode `failure` and the trace is still returned; a policy's spans nest in the
//! iteration.

use loopotel::{LoopTracer, SpanKind};
use loopotel_gym::{
    Action, Env, EnvDescription, EnvError, EpisodeEnv, Observation, Step, run_traced_episode,
};

/// Steps fine twice, then fails the way it was told to.
struct Flaky {
    steps: u64,
    panic: bool,
}

impl Env for Flaky {
    async fn reset(&mut self, task_id: &str, _: Option<i64>) -> Result<Observation, EnvError> {
        Ok(Observation {
            task_id: task_id.into(),
            ..Default::default()
        })
    }

    async fn step(&mut self, _: Action) -> Result<Step, EnvError> {
        self.steps += 1;
        if self.steps == 3 {
            if self.panic {
                panic!("env bug");
            }
            return Err(EnvError::NotReset);
        }
        Ok(Step {
            observation: Observation {
                iteration: self.steps,
                quality_score: 0.3 * self.steps as f64,
                ..Default::default()
            },
            reward: 0.0,
            done: false,
            info: Default::default(),
        })
    }
}

impl EpisodeEnv for Flaky {
    fn describe(&self) -> EnvDescription {
        EnvDescription {
            env_id: Some("test/flaky".into()),
            loop_name: "flaky-loop".into(),
            ..Default::default()
        }
    }
    fn tokens_used(&self) -> Option<u64> {
        None
    }
    fn is_done(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn env_errors_and_panics_end_the_episode_failure_with_the_trace() {
    for panic in [false, true] {
        let mut env = Flaky { steps: 0, panic };
        let mut policy = |_: &Observation| async {
            let _s = loopotel::start_span("agent.think", SpanKind::Worker);
            Action::EnvWorker
        };
        let (result, doc) =
            run_traced_episode(&mut env, &LoopTracer::new(), "t1", Some(1), &mut policy).await;
        assert!(!result.success);
        let want = if panic {
            "env_panic"
        } else {
            "env_error: call reset() before step()"
        };
        assert_eq!(result.termination_reason, want);
        assert_eq!(result.steps, 2);
        let root = doc.root().unwrap();
        assert_eq!(
            root.attributes.get("loop.outcome").unwrap().as_str(),
            Some("failure")
        );
        assert_eq!(
            doc.iterations().count(),
            3,
            "the failed step's iteration is kept"
        );
        let failed_step = doc
            .spans
            .iter()
            .filter(|s| s.name.as_str() == "loop.env.step")
            .find(|s| s.attributes.get("error.type").is_some())
            .expect("the failing step span");
        let expected = if panic { "panic" } else { "env_error" };
        assert_eq!(
            failed_step.attributes.get("error.type").unwrap().as_str(),
            Some(expected)
        );
        // The policy's span is a child of an iteration.
        let iteration_ids: Vec<_> = doc.iterations().map(|s| s.span_id).collect();
        let thinks: Vec<_> = doc
            .spans
            .iter()
            .filter(|s| s.name.as_str() == "agent.think")
            .collect();
        assert_eq!(thinks.len(), 3);
        assert!(
            thinks
                .iter()
                .all(|s| s.parent_span_id.is_some_and(|p| iteration_ids.contains(&p)))
        );
    }
}
