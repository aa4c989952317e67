//! ReBAC through the engine over real HTTP against the embedded local Permit (issue 18): an
//! applied manifest set reads back as declared and re-plans with no changes, `export`
//! round-trips into a fresh Permit, and deleting an instance shows what Permit deletes with it.

use permit_sync::commands::apply::{self, ApplyArgs};
use permit_sync::commands::export::{self, ExportArgs};
use permit_sync::commands::plan::{self, PlanArgs};
use permit_sync::commands::{ConnectionArgs, OwnershipArgs, SyncArgs};
use permit_sync::inventory::StateFile;
use permit_sync::kinds::{Kind, Object, Origin};
use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
use permit_sync::model::State;
use permit_sync::permit::{ClientConfig, PermitClient, live};
use permit_sync::plan::render::{Format, NO_CHANGES};
use permit_sync::plan::{Action, Mode, PlanOptions, Warning};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const POLICY: &str = r#"
apiVersion: permitsync.dev/v1alpha1
kind: PermitResource
metadata: {name: post}
spec:
  key: Post
  actions: {create: {}, read: {}, update: {}, delete: {}}
  attributes:
    premium: {type: bool}
  roles:
    Author: {permissions: [read, update], description: Writes posts}
---
apiVersion: permitsync.dev/v1alpha1
kind: PermitResource
metadata: {name: comment}
spec:
  key: Comment
  actions: {create: {}, read: {}, update: {}, delete: {}}
  relations:
    parent: {subject: Post}
  roles:
    Author: {permissions: [create, read]}
    Moderator:
      permissions: [read, delete]
      extends: [Author]
      grantedTo:
        - {role: Author, onResource: Post, linkedBy: parent}
      grantedToWhen: {noDirectRolesOnObject: true}
"#;

const USERS: &str = r#"
apiVersion: permitsync.dev/v1alpha1
kind: PermitUser
metadata: {name: john}
spec: {key: john@example.com, email: john@example.com}
---
apiVersion: permitsync.dev/v1alpha1
kind: PermitUser
metadata: {name: emma}
spec: {key: emma@example.com}
---
# (Not inline on emma: `validate` checks an inline role with `resourceInstance` against the
# tenant roles, so it refuses `Author` here.)
apiVersion: permitsync.dev/v1alpha1
kind: RoleAssignment
metadata: {name: emma-author-comment-1}
spec: {user: emma@example.com, role: Author, resourceInstance: "Comment:comment-1"}
---
apiVersion: permitsync.dev/v1alpha1
kind: RoleAssignment
metadata: {name: john-author-post-1}
spec: {user: john@example.com, role: Author, resourceInstance: "Post:post-1", tenant: default}
"#;

const INSTANCES: &str = r#"
apiVersion: permitsync.dev/v1alpha1
kind: PermitResourceInstance
metadata: {name: post-1}
spec: {resource: Post, tenant: default, attributes: {premium: false}}
---
apiVersion: permitsync.dev/v1alpha1
kind: PermitResourceInstance
metadata: {name: comment-1}
spec: {resource: Comment, key: comment-1}
"#;

const COMMENT_2: &str = r#"
apiVersion: permitsync.dev/v1alpha1
kind: PermitResourceInstance
metadata: {name: comment-2}
spec: {resource: Comment, tenant: default}
"#;

const TUPLES: &str = r#"
apiVersion: permitsync.dev/v1alpha1
kind: PermitRelationshipTuple
metadata: {name: post-1-parent-comment-1}
spec: {subject: "Post:post-1", relation: parent, object: "Comment:comment-1", tenant: default}
"#;

const TUPLE_2: &str = r#"
apiVersion: permitsync.dev/v1alpha1
kind: PermitRelationshipTuple
metadata: {name: post-1-parent-comment-2}
spec: {subject: "Post:post-1", relation: parent, object: "Comment:comment-2"}
"#;

struct Env {
    permit: LocalHandle,
    dir: tempfile::TempDir,
}

async fn start() -> Env {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api-key"), permit.api_key()).unwrap();
    Env { permit, dir }
}

impl Env {
    fn connection(&self) -> ConnectionArgs {
        ConnectionArgs {
            api_url: self.permit.api_url(),
            api_key_file: Some(self.dir.path().join("api-key")),
            rate_limits: vec![],
            timeout: 10,
        }
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("state/inventory.json")
    }

    fn sync(&self, prune: bool) -> SyncArgs {
        SyncArgs {
            path: PathBuf::from("manifests"),
            ownership: OwnershipArgs {
                prune,
                mode: Mode::Owned,
                allow_empty: false,
                max_deletions: None,
                state_file: self.state_file(),
            },
            connection: self.connection(),
        }
    }

    async fn apply(&self, prune: bool, objects: &[(Origin, Object)]) -> String {
        let args = ApplyArgs {
            sync: self.sync(prune),
            dry_run: false,
            yes: true,
            output: Format::Table,
            report: None,
            concurrency: 8,
        };
        let mut out = Vec::new();
        let desired = permit_sync::commands::desired(objects).unwrap();
        let code = apply::run(&args, desired, &mut out).await.unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(code, 0, "{out}");
        out
    }

    /// `plan --detailed-exitcode` as a table: its exit code and text.
    async fn plan_text(&self, objects: &[(Origin, Object)]) -> (u8, String) {
        let args = PlanArgs {
            sync: self.sync(true),
            output: Format::Table,
            detailed_exitcode: true,
        };
        let mut out = Vec::new();
        let desired = permit_sync::commands::desired(objects).unwrap();
        let code = plan::run(&args, &desired, &mut out).await.unwrap();
        (code, String::from_utf8(out).unwrap())
    }

    async fn client(&self) -> PermitClient {
        let config = ClientConfig::new(
            self.permit.api_url(),
            permit_sync::permit::ApiKey::new(self.permit.api_key()),
        );
        PermitClient::connect(config).await.unwrap()
    }

    async fn live(&self) -> State {
        live::read(&self.client().await).await.unwrap()
    }

    /// The plan the engine makes (prune on), to assert its ops.
    async fn planned(&self, objects: &[(Origin, Object)]) -> permit_sync::plan::Plan {
        let desired = permit_sync::commands::desired(objects).unwrap();
        let options = PlanOptions {
            prune: true,
            mode: Mode::Owned,
            allow_empty: false,
            max_deletions: None,
        };
        let state_file = StateFile::new(self.state_file());
        permit_sync::engine::plan(&self.client().await, &desired, &state_file, &options)
            .await
            .unwrap()
            .plan
    }

    /// One call straight to the local Permit's facts API, as another tool would make it.
    async fn facts(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = reqwest::Client::new()
            .request(method.clone(), format!("{}{path}", self.permit.facts_url()))
            .bearer_auth(self.permit.api_key())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn allowed(&self, user: &str, action: &str, resource: &str) -> bool {
        let body = permit_sync::check::allowed_body(user, action, resource, "default");
        let r: Value = reqwest::Client::new()
            .post(format!("{}/allowed", self.permit.pdp_url()))
            .bearer_auth(self.permit.api_key())
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["allow"].as_bool().unwrap()
    }
}

/// The manifests, through the loader (files in a directory, as a user writes them).
fn manifests(dir: &Path, files: &[(&str, &str)]) -> Vec<(Origin, Object)> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    permit_sync::commands::load(dir).unwrap()
}

fn all(dir: &Path) -> Vec<(Origin, Object)> {
    manifests(
        dir,
        &[
            ("policy.yaml", POLICY),
            ("users.yaml", USERS),
            ("instances.yaml", INSTANCES),
            ("comment-2.yaml", COMMENT_2),
            ("tuples.yaml", TUPLES),
            ("tuple-2.yaml", TUPLE_2),
        ],
    )
}

fn keys<V>(map: &std::collections::BTreeMap<String, V>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

#[tokio::test]
async fn applied_rebac_reads_back_as_declared_and_replans_with_no_changes() {
    let env = start().await;
    let objects = all(&env.dir.path().join("m"));
    let plan = env.planned(&objects).await;
    let creates = |kind: Kind| {
        plan.ops
            .iter()
            .filter(|o| o.kind == kind && o.action == Action::Create)
            .count()
    };
    assert_eq!(
        [
            Kind::PermitResource,
            Kind::ResourceRelation,
            Kind::ResourceRole,
            Kind::RoleDerivation,
            Kind::PermitUser,
            Kind::PermitResourceInstance,
            Kind::PermitRelationshipTuple,
            Kind::RoleAssignment,
        ]
        .map(creates),
        [2, 1, 3, 1, 2, 3, 2, 2]
    );
    env.apply(false, &objects).await;

    // Permit read back: every ReBAC object exactly as the desired model has it.
    let live = env.live().await;
    let desired = permit_sync::commands::desired(&objects).unwrap().state;
    assert_eq!(
        keys(&live.relations),
        ["Comment#parent"],
        "{:?}",
        live.relations
    );
    assert_eq!(live.relations, desired.relations);
    assert_eq!(
        keys(&live.resource_roles),
        ["Comment#Author", "Comment#Moderator", "Post#Author"]
    );
    let moderator = &live.resource_roles["Comment#Moderator"];
    assert_eq!(moderator, &desired.resource_roles["Comment#Moderator"]);
    assert_eq!(moderator.no_direct_roles_on_object, Some(true));
    assert_eq!(
        moderator.permissions.iter().collect::<Vec<_>>(),
        ["delete", "read"]
    );
    for key in ["Comment#Author", "Post#Author"] {
        let mut declared = desired.resource_roles[key].clone();
        assert_eq!(declared.no_direct_roles_on_object, None, "undeclared");
        declared.no_direct_roles_on_object = Some(false);
        assert_eq!(live.resource_roles[key], declared);
    }
    assert_eq!(
        live.resource_roles["Post#Author"].description.as_deref(),
        Some("Writes posts")
    );
    assert_eq!(
        keys(&live.derivations),
        ["Comment#Moderator/Post#Author/parent"]
    );
    assert_eq!(live.derivations, desired.derivations);
    assert_eq!(
        keys(&live.instances),
        ["Comment:comment-1", "Comment:comment-2", "Post:post-1"]
    );
    assert_eq!(
        live.instances["Post:post-1"],
        desired.instances["Post:post-1"]
    );
    assert_eq!(live.instances["Comment:comment-2"].tenant, "default");
    assert_eq!(
        keys(&live.tuples),
        [
            "Post:post-1/parent/Comment:comment-1",
            "Post:post-1/parent/Comment:comment-2"
        ]
    );
    assert_eq!(live.tuples, desired.tuples);
    assert_eq!(
        live.assignments.keys().collect::<Vec<_>>(),
        [
            "emma@example.com/Author/default/Comment:comment-1",
            "john@example.com/Author/default/Post:post-1"
        ]
    );

    // Re-planned: nothing to do.
    let again = env.planned(&objects).await;
    assert!(again.ops.is_empty(), "{:?}", again.ops);
    let (code, out) = env.plan_text(&objects).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(NO_CHANGES), "{out}");

    // And the PDP decides on it: John moderates comment-1 through its parent post.
    assert!(
        env.allowed("john@example.com", "delete", "Comment:comment-1")
            .await
    );
    assert!(
        !env.allowed("emma@example.com", "delete", "Comment:comment-1")
            .await
    );
    assert!(
        env.allowed("emma@example.com", "read", "Comment:comment-1")
            .await
    );
}

#[tokio::test]
async fn export_round_trips_into_a_fresh_permit() {
    let env = start().await;
    let objects = all(&env.dir.path().join("m"));
    env.apply(false, &objects).await;
    // Objects made elsewhere are exported too: an instance, a tuple and an instance role.
    env.facts(
        reqwest::Method::POST,
        "/resource_instances",
        json!({"key": "post-2", "resource": "Post", "tenant": "default",
               "attributes": {"premium": true}}),
    )
    .await;
    env.facts(
        reqwest::Method::POST,
        "/relationship_tuples",
        json!({"subject": "Post:post-2", "relation": "parent", "object": "Comment:comment-2",
               "tenant": "default"}),
    )
    .await;
    env.facts(
        reqwest::Method::POST,
        "/role_assignments",
        json!({"user": "john@example.com", "role": "Moderator",
               "resource_instance": "Comment:comment-2", "tenant": "default"}),
    )
    .await;
    let before = env.live().await;

    let out = env.dir.path().join("exported");
    let args = ExportArgs {
        output_dir: out.clone(),
        connection: env.connection(),
    };
    assert_eq!(export::run(&args).await.unwrap(), 0);
    let exported = permit_sync::commands::load(&out).unwrap();
    let count = |kind: Kind| exported.iter().filter(|(_, o)| o.kind() == kind).count();
    assert_eq!(
        [
            Kind::PermitResource,
            Kind::PermitUser,
            Kind::PermitResourceInstance,
            Kind::PermitRelationshipTuple,
            Kind::RoleAssignment,
        ]
        .map(count),
        [2, 2, 4, 3, 3]
    );
    let text = std::fs::read_to_string(out.join("resources.yaml")).unwrap();
    assert!(text.contains("grantedTo:"), "{text}");
    assert!(text.contains("noDirectRolesOnObject: true"), "{text}");
    assert!(text.contains("linkedBy: parent"), "{text}");

    // The export against the Permit it came from: no changes.
    let (code, text) = env.plan_text(&exported).await;
    assert_eq!(code, 0, "{text}");

    // Into a fresh Permit: applied, it equals the first, and re-plans with no changes.
    let fresh = start().await;
    fresh.apply(false, &exported).await;
    let after = fresh.live().await;
    assert_eq!(after.resources, before.resources);
    assert_eq!(after.relations, before.relations);
    assert_eq!(after.resource_roles, before.resource_roles);
    assert_eq!(after.derivations, before.derivations);
    assert_eq!(after.instances, before.instances);
    assert_eq!(after.tuples, before.tuples);
    assert_eq!(after.assignments, before.assignments);
    assert_eq!(
        after.instances["Post:post-2"].attributes,
        Some(permit_sync::model::Attrs::from([(
            "premium".to_string(),
            json!(true)
        )]))
    );
    let replan = fresh.planned(&exported).await;
    assert!(replan.ops.is_empty(), "{:?}", replan.ops);
    let (code, text) = fresh.plan_text(&exported).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(NO_CHANGES), "{text}");
}

#[tokio::test]
async fn deleting_an_instance_shows_what_permit_deletes_with_it() {
    let env = start().await;
    let dir = env.dir.path().join("m");
    env.apply(true, &all(&dir)).await;
    // Someone else's: a post and its tuple onto comment-2, and Emma's role on comment-2.
    env.facts(
        reqwest::Method::POST,
        "/resource_instances",
        json!({"key": "post-2", "resource": "Post", "tenant": "default"}),
    )
    .await;
    env.facts(
        reqwest::Method::POST,
        "/relationship_tuples",
        json!({"subject": "Post:post-2", "relation": "parent", "object": "Comment:comment-2",
               "tenant": "default"}),
    )
    .await;
    env.facts(
        reqwest::Method::POST,
        "/role_assignments",
        json!({"user": "emma@example.com", "role": "Author",
               "resource_instance": "Comment:comment-2", "tenant": "default"}),
    )
    .await;

    // comment-2's manifest goes (its tuple's stays out of the plan's own deletions).
    let objects = manifests(
        &dir,
        &[
            ("policy.yaml", POLICY),
            ("users.yaml", USERS),
            ("instances.yaml", INSTANCES),
            ("tuples.yaml", TUPLES),
        ],
    );
    let plan = env.planned(&objects).await;
    let mut ops: Vec<(Kind, &str, Action, Option<(Kind, &str)>)> = plan
        .ops
        .iter()
        .map(|o| {
            let by = o.cascaded_by.as_ref().map(|(k, key)| (*k, key.as_str()));
            (o.kind, o.key.as_str(), o.action, by)
        })
        .collect();
    ops.sort();
    let mut expected = vec![
        (
            Kind::PermitResourceInstance,
            "Comment:comment-2",
            Action::Delete,
            None,
        ),
        (
            Kind::PermitRelationshipTuple,
            "Post:post-1/parent/Comment:comment-2",
            Action::Delete,
            Some((Kind::PermitResourceInstance, "Comment:comment-2")),
        ),
    ];
    expected.sort();
    assert_eq!(ops, expected);
    // What the plan does not delete itself but Permit takes along: the other tuple and role.
    let cascades: Vec<&Warning> = plan
        .warnings
        .iter()
        .filter(|w| matches!(w, Warning::CascadeDeletes { .. }))
        .collect();
    assert_eq!(
        cascades,
        [&Warning::CascadeDeletes {
            kind: Kind::PermitResourceInstance,
            key: "Comment:comment-2".into(),
            count: 2,
            example: "Post:post-2/parent/Comment:comment-2".into(),
            example_kind: Kind::PermitRelationshipTuple,
        }]
    );
    let (code, text) = env.plan_text(&objects).await;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("Comment:comment-2"), "{text}");

    env.apply(true, &objects).await;
    let live = env.live().await;
    assert_eq!(
        keys(&live.instances),
        ["Comment:comment-1", "Post:post-1", "Post:post-2"]
    );
    assert_eq!(keys(&live.tuples), ["Post:post-1/parent/Comment:comment-1"]);
    assert_eq!(
        live.assignments.keys().collect::<Vec<_>>(),
        [
            "emma@example.com/Author/default/Comment:comment-1",
            "john@example.com/Author/default/Post:post-1"
        ]
    );
    let again = env.planned(&objects).await;
    assert!(again.ops.is_empty(), "{:?}", again.ops);
}
