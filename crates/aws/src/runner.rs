//! The local runner against an AWS emulator: it polls each stage's queue as Lambda's
//! event-source mapping would, hands the batch to the same handler a function uses, deletes
//! what succeeded and gives back what must be retried. Each stage acts as its own function:
//! with `VELLUM_LOCAL_ROLES` set, with that function's keys (receiving, deleting and giving
//! back included, as the event-source mapping does with the function's role).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use vellum_core::model::Stage;
use vellum_core::ports::Queue;
use vellum_core::StageContext;

use crate::app::{AwsApp, Names};
use crate::lambda::handle_sqs;
use crate::roles::{function_of, long_jobs_role_of, LocalRoles};

/// How long a received message stays hidden while its batch is handled, unless told.
pub const VISIBILITY: Duration = Duration::from_secs(120);

/// A pipeline per stage function, each with its function's credentials, and one per
/// long-job worker (the Fargate task), with its task role's.
#[derive(Clone)]
pub struct Fleet {
    apps: Vec<(Stage, Arc<AwsApp>)>,
    /// The long-job workers, by the stage whose long-job queue they take.
    workers: Vec<(Stage, Arc<AwsApp>)>,
    /// Whether this fleet runs its long-job workers.
    long_job_workers: bool,
}

impl Fleet {
    /// Each stage as its function: with its keys from `VELLUM_LOCAL_ROLES` when that is set,
    /// else every stage with the environment's credentials.
    pub fn from_env(names: &Names, rt: tokio::runtime::Handle) -> Result<Self, String> {
        Self::with_roles(names, rt, LocalRoles::from_env()?.as_ref())
    }

    /// Each stage with its function's keys from `roles`, each long-job worker with its task
    /// role's (None: the environment's for all).
    pub fn with_roles(names: &Names, rt: tokio::runtime::Handle, roles: Option<&LocalRoles>) -> Result<Self, String> {
        let base = crate::load_config(&rt);
        let identifier = Arc::new(AwsApp::format_identifier()?);
        let with_stages = Stage::ALL.iter().filter_map(|s| long_jobs_role_of(*s).map(|role| (*s, role)));
        let (apps, workers) = match roles {
            None => {
                let app = Arc::new(AwsApp::with_config(names, rt, base, identifier)?);
                let apps = Stage::ALL.iter().map(|stage| (*stage, app.clone())).collect();
                (apps, with_stages.map(|(stage, _)| (stage, app.clone())).collect())
            }
            Some(roles) => {
                let acting_as = |role: &str| -> Result<Arc<AwsApp>, String> {
                    let config = roles.config_for(&base, role)?;
                    Ok(Arc::new(AwsApp::with_config(names, rt.clone(), config, identifier.clone())?))
                };
                let apps = Stage::ALL
                    .iter()
                    .map(|stage| Ok((*stage, acting_as(function_of(*stage))?)))
                    .collect::<Result<_, String>>()?;
                let workers =
                    with_stages.map(|(stage, role)| Ok((stage, acting_as(role)?))).collect::<Result<_, String>>()?;
                (apps, workers)
            }
        };
        Ok(Self { apps, workers, long_job_workers: true })
    }

    /// Every function and worker changed by `change`.
    fn each_app(self, change: impl Fn(&mut AwsApp)) -> Self {
        let changed = |apps: Vec<(Stage, Arc<AwsApp>)>| {
            apps.into_iter()
                .map(|(stage, app)| {
                    let mut app = (*app).clone();
                    change(&mut app);
                    (stage, Arc::new(app))
                })
                .collect()
        };
        Self { apps: changed(self.apps), workers: changed(self.workers), ..self }
    }

    /// Every function with these settings (tests: small batches).
    pub fn with_settings(self, settings: &vellum_core::config::Settings) -> Self {
        self.each_app(|app| app.pipeline.settings = settings.clone())
    }

    /// Every function with its processing profiles changed (tests: a profile's switches).
    pub fn with_profiles(self, change: impl Fn(&mut vellum_core::config::profile::Profile)) -> Self {
        self.each_app(|app| app.pipeline.config.profiles.iter_mut().for_each(&change))
    }

    /// Every function with its format policy rules changed (tests: a rule's long-job size).
    pub fn with_rules(self, change: impl Fn(&mut vellum_core::config::fpr::Rules)) -> Self {
        self.each_app(|app| {
            let mut rules = (*app.pipeline.fpr).clone();
            change(&mut rules);
            app.pipeline.fpr = Arc::new(rules);
        })
    }

    /// Every function sending its long jobs where `long_jobs` says (`HandOff`: as with
    /// `VELLUM_LONG_JOBS=fargate`).
    pub fn with_long_jobs(self, long_jobs: vellum_core::LongJobs) -> Self {
        self.each_app(|app| app.long_jobs = long_jobs)
    }

    /// Without the long-job workers: what is handed to them waits in their queues.
    pub fn without_long_job_workers(self) -> Self {
        Self { long_job_workers: false, ..self }
    }

    /// The pipeline of `stage`'s function.
    pub fn app(&self, stage: Stage) -> &AwsApp {
        &self.apps.iter().find(|(s, _)| *s == stage).expect("every stage has its function").1
    }
}

/// One pass over every queue, each message hidden for `visibility` while it is handled;
/// returns how many messages were handled.
pub fn poll_once(
    fleet: &Fleet,
    budget: Duration,
    visibility: Duration,
    retry_after: Duration,
) -> Result<usize, String> {
    let mut handled = 0;
    for (stage, app) in &fleet.apps {
        let queue = stage.name();
        let deliveries = app.queue.receive(queue, 10, visibility).map_err(|e| e.to_string())?;
        if deliveries.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        for d in &deliveries {
            let mut m = SqsMessage::default();
            m.message_id = Some(d.message_id.clone());
            m.receipt_handle = Some(d.receipt.clone());
            m.body = Some(d.body.clone());
            event.records.push(m);
        }
        let ctx = StageContext::with_budget(budget).with_long_jobs(app.long_jobs);
        let response = handle_sqs(&app.pipeline, *stage, &event, ctx);
        for d in &deliveries {
            let failed = response.batch_item_failures.iter().any(|f| f.item_identifier == d.message_id);
            let settled = if failed {
                app.queue.nack(queue, &d.receipt, retry_after, "the handler asked for a retry")
            } else {
                app.queue.ack(queue, &d.receipt)
            };
            settled.map_err(|e| e.to_string())?;
        }
        handled += deliveries.len();
    }
    if fleet.long_job_workers {
        for (stage, app) in &fleet.workers {
            while crate::long_jobs::take_one(app, *stage).map_err(|e| e.to_string())?.is_some() {
                handled += 1;
            }
        }
    }
    Ok(handled)
}

/// Polls until `done` says so, or nothing arrives for `idle`.
pub fn drive(fleet: &Fleet, budget: Duration, idle: Duration, done: impl Fn() -> bool) -> Result<(), String> {
    let mut quiet_since = Instant::now();
    loop {
        if done() {
            return Ok(());
        }
        if poll_once(fleet, budget, VISIBILITY, Duration::from_secs(1))? > 0 {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > idle {
            return Ok(());
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
