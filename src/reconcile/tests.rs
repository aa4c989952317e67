//! The loop's rules with a fake in-memory source against the embedded local Permit: the relist
//! policy, the failure classes, the touched-keys shortcut and the backoff.

use super::*;
use crate::inventory::{Inventory, Loaded};
use crate::kinds::Kind;
use crate::local::knobs::Faults;
use crate::local::{LocalConfig, LocalHandle, LocalPermit};
use crate::model::{Assignment, Obj, Tenant, User};
use crate::permit::{ApiKey, Limits, RetryPolicy};

/// The fake source: objects in memory, ownership an in-memory inventory updated from each
/// outcome, and what the loop handed back.
struct Fake {
    desired: Desired,
    ownership: Loaded,
    options: PlanOptions,
    executed: usize,
}

impl Fake {
    fn new(objects: impl IntoIterator<Item = Obj>) -> Fake {
        let mut desired = Desired::default();
        for o in objects {
            desired.state.insert(o);
        }
        Fake {
            desired,
            ownership: Loaded::Ok(Inventory::new(None)),
            options: PlanOptions::default(),
            executed: 0,
        }
    }

    fn set(&mut self, obj: Obj) {
        self.desired.state.insert(obj);
    }
}

impl Source for Fake {
    fn desired(&self) -> &Desired {
        &self.desired
    }
    fn ownership(&self) -> Ownership<'_> {
        Ownership::of(&self.ownership)
    }
    fn options(&self) -> &PlanOptions {
        &self.options
    }
    fn before_execute(&mut self, plan: &Plan, environment: &str) -> anyhow::Result<()> {
        let Loaded::Ok(inventory) = &mut self.ownership else {
            unreachable!("the fake's inventory is always trusted")
        };
        plan.record_declared(inventory, Some(environment.into()));
        Ok(())
    }
    fn after_execute(
        &mut self,
        plan: &Plan,
        synced: &dyn Fn(&plan::Op) -> bool,
    ) -> anyhow::Result<()> {
        self.executed += 1;
        let Loaded::Ok(inventory) = &mut self.ownership else {
            unreachable!("the fake's inventory is always trusted")
        };
        plan.drop_gone(inventory, synced);
        Ok(())
    }
}

fn tenant(key: &str, name: &str) -> Obj {
    Obj::Tenant(Tenant {
        key: key.into(),
        name: name.into(),
        description: None,
        attributes: None,
    })
}

fn user(key: &str) -> Obj {
    Obj::User(User {
        key: key.into(),
        email: None,
        first_name: None,
        last_name: None,
        attributes: None,
    })
}

fn client_config(url: &str, key: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, ApiKey::new(key));
    c.limits = Limits::unlimited();
    c.retry = RetryPolicy {
        max_attempts: 2,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_millis(50),
    };
    c.timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(1);
    c
}

fn loop_config(client: ClientConfig) -> LoopConfig {
    LoopConfig {
        client,
        drift_interval: Duration::from_secs(3600),
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_millis(400)),
        jitter: false,
        exec: ExecOptions::default(),
        metrics: crate::metrics::global().sync.clone(),
        ids: false,
    }
}

async fn local() -> (LocalHandle, Reconciler) {
    let permit = LocalPermit::start(LocalConfig::ephemeral())
        .await
        .expect("local Permit starts");
    let core = Reconciler::new(loop_config(client_config(
        &permit.api_url(),
        permit.api_key(),
    )));
    (permit, core)
}

/// Requests the local Permit served that change nothing.
fn reads(permit: &LocalHandle) -> u64 {
    let c = permit.counters();
    c.total - c.writes()
}

fn touched(ids: &[(Kind, &str)]) -> Option<BTreeSet<ObjectId>> {
    Some(ids.iter().map(|(k, s)| (*k, s.to_string())).collect())
}

fn never() -> CancellationToken {
    CancellationToken::new()
}

#[tokio::test]
async fn relists_at_start_after_unknown_outcomes_and_on_the_drift_interval_only() {
    let (permit, mut core) = local().await;
    let mut src = Fake::new([tenant("a", "A"), tenant("b", "B")]);
    assert!(core.relist_due(), "nothing listed yet");

    // At start: listed, applied, clean.
    let s = core.sync(&mut src, None, false, &never()).await;
    assert_eq!(s.class, Class::Clean);
    assert!(s.listed && !s.scoped && s.applied);
    assert!(core.ready() && !core.relist_due());
    assert!(permit.store().tenants.get("a").is_some());

    // A clean touched-keys sync is not followed by a relist.
    src.set(tenant("c", "C"));
    let s = core
        .sync(
            &mut src,
            touched(&[(Kind::PermitTenant, "c")]),
            false,
            &never(),
        )
        .await;
    assert_eq!(s.class, Class::Clean);
    assert!(!s.listed && s.scoped);
    assert!(!core.relist_due(), "a clean sync leaves the cache trusted");

    // A failed apply of unknown outcome (5xx): the next sync lists Permit.
    permit
        .set_faults(Faults {
            error_rate: 1.0,
            error_status: 503,
            ..Default::default()
        })
        .unwrap();
    src.set(tenant("d", "D"));
    let s = core
        .sync(
            &mut src,
            touched(&[(Kind::PermitTenant, "d")]),
            false,
            &never(),
        )
        .await;
    assert!(
        matches!(s.class, Class::Trouble { failed: 1, .. }),
        "{:?}",
        s.class
    );
    assert!(!s.listed);
    assert!(core.relist_due(), "the outcome may be unknown: list again");
    permit.set_faults(Faults::default()).unwrap();
    let s = core
        .sync(
            &mut src,
            touched(&[(Kind::PermitTenant, "d")]),
            false,
            &never(),
        )
        .await;
    assert_eq!(s.class, Class::Clean);
    assert!(s.listed && !s.scoped, "listed, so everything is planned");
    assert!(permit.store().tenants.get("d").is_some());
    assert!(!core.relist_due());

    // Forced (the caller's relist) and dropped cache (a new leadership term).
    let s = core.sync(&mut src, None, true, &never()).await;
    assert!(
        s.listed && s.class == Class::Clean && !s.applied,
        "nothing to do"
    );
    core.invalidate();
    assert!(core.relist_due());
    let s = core.sync(&mut src, None, false, &never()).await;
    assert!(s.listed);
}

#[tokio::test]
async fn relists_on_the_drift_interval() {
    let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
    let mut config = loop_config(client_config(&permit.api_url(), permit.api_key()));
    config.drift_interval = Duration::from_millis(300);
    let mut core = Reconciler::new(config);
    let mut src = Fake::new([tenant("a", "A")]);
    assert!(core.sync(&mut src, None, false, &never()).await.listed);
    let s = core.sync(&mut src, None, false, &never()).await;
    assert!(!s.listed, "within the interval the cache is used");
    let next = core.next_relist();
    tokio::time::sleep_until(next).await;
    assert!(core.relist_due());
    let s = core.sync(&mut src, None, false, &never()).await;
    assert!(s.listed, "drift relist");
    assert!(core.next_relist() > next, "counted from the last listing");
}

#[tokio::test]
async fn a_one_object_change_plans_only_that_key_with_no_read() {
    let (permit, mut core) = local().await;
    let objects: Vec<Obj> = (0..20)
        .map(|i| tenant(&format!("t{i}"), &format!("T{i}")))
        .collect();
    let mut src = Fake::new(objects);
    let s = core.sync(&mut src, None, false, &never()).await;
    assert_eq!(s.class, Class::Clean);
    assert_eq!(s.plan.as_ref().unwrap().ops.len(), 20);

    permit.reset_counters();
    src.set(tenant("t7", "Seven"));
    let s = core
        .sync(
            &mut src,
            touched(&[(Kind::PermitTenant, "t7")]),
            false,
            &never(),
        )
        .await;
    assert_eq!(s.class, Class::Clean);
    assert!(s.scoped && !s.listed);
    let plan = s.plan.unwrap();
    let keys: Vec<(Kind, &str)> = plan.ops.iter().map(|o| (o.kind, o.key.as_str())).collect();
    assert_eq!(
        keys,
        [(Kind::PermitTenant, "t7")],
        "only the touched key is planned"
    );
    assert_eq!(reads(&permit), 0, "no API read");
    assert!(permit.counters().writes() >= 1);
    assert_eq!(permit.store().tenants.get("t7").unwrap().name, "Seven");
    let cached = core.live().unwrap();
    assert!(
        matches!(cached.get(Kind::PermitTenant, "t7"), Some(Obj::Tenant(t)) if t.name == "Seven"),
        "the outcome is projected into the cache"
    );

    // The options changed: the shortcut is off, everything is planned (still from the cache).
    src.options.max_deletions = Some(5);
    src.set(tenant("t8", "Eight"));
    let s = core
        .sync(
            &mut src,
            touched(&[(Kind::PermitTenant, "t8")]),
            false,
            &never(),
        )
        .await;
    assert!(!s.scoped && !s.listed);
    assert_eq!(s.plan.unwrap().ops.len(), 1);
}

#[tokio::test]
async fn unreachable_backs_off_doubling_to_the_cap_and_is_not_ready() {
    let (permit, mut core) = local().await;
    let mut src = Fake::new([tenant("a", "A")]);
    permit
        .set_faults(Faults {
            drop_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
    let mut waits = Vec::new();
    for _ in 0..5 {
        let s = core.sync(&mut src, None, false, &never()).await;
        assert!(matches!(s.class, Class::Unreachable(_)), "{:?}", s.class);
        assert!(!core.ready());
        let at = core.retry_at().expect("a retry is scheduled");
        waits.push(at.saturating_duration_since(Instant::now()));
    }
    assert_eq!(core.failures(), 5);
    let want = [100u64, 200, 400, 400, 400];
    for (w, want) in waits.iter().zip(want) {
        let w = w.as_millis() as u64;
        assert!(
            w <= want && w + 60 >= want,
            "waits {waits:?}, want {want} ms"
        );
    }
    assert_eq!(src.executed, 0, "nothing executed while unreachable");

    // Back: the sync runs, the backoff resets, ready.
    permit.set_faults(Faults::default()).unwrap();
    let s = core.sync(&mut src, None, false, &never()).await;
    assert_eq!(s.class, Class::Clean);
    assert!(s.listed && core.ready());
    assert_eq!((core.failures(), core.retry_at()), (0, None));
}

#[tokio::test]
async fn a_rejected_object_gets_no_backoff_retry_and_no_relist() {
    let (permit, mut core) = local().await;
    let mut src = Fake::new([tenant("acme", "Acme"), user("jane")]);
    assert_eq!(
        core.sync(&mut src, None, false, &never()).await.class,
        Class::Clean
    );
    // A role Permit does not have: the assignment is refused (404).
    let ghost = Obj::Assignment(Assignment {
        user: "jane".into(),
        role: "ghost".into(),
        tenant: "acme".into(),
        resource_instance: None,
    });
    let key = match &ghost {
        Obj::Assignment(a) => a.key(),
        _ => unreachable!(),
    };
    src.set(ghost);
    let s = core
        .sync(
            &mut src,
            touched(&[(Kind::RoleAssignment, key.as_str())]),
            false,
            &never(),
        )
        .await;
    assert!(
        matches!(&s.class, Class::Rejected { failed: 1, .. }),
        "{:?}",
        s.class
    );
    assert!(!s.class.retries());
    assert_eq!((core.failures(), core.retry_at()), (0, None), "no backoff");
    assert!(
        !core.relist_due(),
        "a refusal's outcome is known: no relist"
    );
    assert!(core.ready(), "Permit answered");
    assert!(permit.store().tenants.get("acme").is_some());
}

#[tokio::test]
async fn a_refused_plan_is_not_retried() {
    let (permit, mut core) = local().await;
    let mut src = Fake::new([tenant("a", "A"), tenant("b", "B")]);
    src.options.prune = true;
    src.options.max_deletions = Some(0);
    assert_eq!(
        core.sync(&mut src, None, false, &never()).await.class,
        Class::Clean
    );
    // Deleting an owned tenant is more than `max_deletions` allows.
    src.desired.state.tenants.remove("b");
    let s = core.sync(&mut src, None, false, &never()).await;
    assert!(matches!(s.class, Class::Refused(_)), "{:?}", s.class);
    assert!(!s.class.retries() && core.retry_at().is_none());
    assert_eq!(src.executed, 1, "nothing executed");
    assert!(permit.store().tenants.get("b").is_some());
}
