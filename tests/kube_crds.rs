//! The CRDs on a real kube-apiserver: they install, accept valid objects, refuse schema and CEL
//! violations with the field in the message, and serve status and printer columns.

#[path = "support/kube_env.rs"]
mod kube_env;

use kube::api::{
    Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams, ValidationDirective,
};
use kube::{Client, Resource};
use permit_sync::kinds::{
    PermitPDP, PermitResource, PermitRole, PermitRoleSpec, PermitTenant, PermitTenantSpec,
    PermitUser, PermitUserSpec, RoleAssignment, RoleAssignmentSpec,
};
use serde_json::{Value, json};
use std::path::Path;

/// The Kubernetes test environment, or return from the test (skip, outside CI only).
macro_rules! kube_env {
    () => {
        match kube_env::shared() {
            Some(env) => env,
            None => return,
        }
    };
}

/// A fresh namespace per test, so tests share the apiserver without seeing each other.
async fn namespace(env: &kube_env::KubeEnv, client: &Client, test: &str) -> String {
    env.namespace(client, test)
        .await
        .expect("namespace created")
}

fn dynamic<K: Resource<DynamicType = ()>>(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<K>(&()))
}

fn object(kind: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "permitsync.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a well-formed object")
}

/// The apiserver's refusal: (HTTP code, message). Panics when the call succeeded.
fn refusal<T: std::fmt::Debug>(result: kube::Result<T>, what: &str) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message.clone()),
        Err(other) => panic!("{what}: expected an API refusal, got {other:?}"),
        Ok(obj) => panic!("{what}: the apiserver accepted it: {obj:?}"),
    }
}

fn assert_refused<T: std::fmt::Debug>(
    result: kube::Result<T>,
    what: &str,
    code: u16,
    needles: &[&str],
) {
    let (got, message) = refusal(result, what);
    assert_eq!(got, code, "{what}: status code; message: {message}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "{what}: message lacks {needle:?}: {message}"
        );
    }
}

#[test]
fn crds_use_only_formats_kubernetes_knows() {
    // The apiserver only warns on unknown formats (and then ignores them), so check offline.
    const KNOWN: &[&str] = &[
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "binary",
        "date",
        "date-time",
        "datetime",
        "duration",
        "password",
        "email",
        "uri",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "bsonobjectid",
    ];
    fn walk(v: &Value, path: &str, bad: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let (Some(Value::String(f)), Some(_)) = (map.get("format"), map.get("type"))
                    && !KNOWN.contains(&f.as_str())
                {
                    bad.push(format!("{path}: {f}"));
                }
                for (k, v) in map {
                    walk(v, &format!("{path}.{k}"), bad);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, path, bad)),
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for crd in permit_sync::kinds::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        walk(&serde_json::to_value(&crd).unwrap(), &name, &mut bad);
    }
    assert!(
        bad.is_empty(),
        "formats the apiserver does not know: {bad:?}"
    );
}

#[tokio::test]
async fn crds_are_established() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let env = kube_env!();
    let api = Api::<CustomResourceDefinition>::all(env.client());
    for crd in permit_sync::kinds::crds() {
        let name = crd.metadata.name.unwrap();
        let live = api.get(&name).await.expect("CRD installed");
        let conditions = live.status.and_then(|s| s.conditions).unwrap_or_default();
        for wanted in ["Established", "NamesAccepted"] {
            assert!(
                conditions
                    .iter()
                    .any(|c| c.type_ == wanted && c.status == "True"),
                "{name}: {wanted} is not True: {conditions:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_valid_object_of_every_kind_is_accepted() {
    let env = kube_env!();
    let client = env.client();
    let ns = namespace(&env, &client, "valid").await;
    let pp = PostParams::default();

    let resource: PermitResource = serde_json::from_value(json!({
        "apiVersion": "permitsync.dev/v1alpha1", "kind": "PermitResource",
        "metadata": {"name": "post"},
        "spec": {"name": "Post", "actions": {"read": {}, "update": {"name": "Update"}},
                 "attributes": {"published": {"type": "bool"}}}
    }))
    .unwrap();
    let role = PermitRole::new(
        "viewer",
        PermitRoleSpec {
            name: Some("Viewer".into()),
            permissions: vec!["post:read".into()],
            ..Default::default()
        },
    );
    let tenant = PermitTenant::new(
        "acme",
        PermitTenantSpec {
            name: Some("Acme Inc.".into()),
            attributes: Some([("tier".to_string(), json!("gold"))].into()),
            ..Default::default()
        },
    );
    let user = PermitUser::new(
        "jane",
        PermitUserSpec {
            key: Some("jane@example.com".into()),
            email: Some("jane@example.com".into()),
            first_name: Some("Jane".into()),
            ..Default::default()
        },
    );
    let assignment = RoleAssignment::new(
        "jane-viewer",
        RoleAssignmentSpec {
            user: "jane@example.com".into(),
            role: "viewer".into(),
            tenant: Some("acme".into()),
            ..Default::default()
        },
    );
    let pdp: PermitPDP = serde_json::from_value(json!({
        "apiVersion": "permitsync.dev/v1alpha1", "kind": "PermitPDP",
        "metadata": {"name": "pdp"},
        "spec": {"replicas": 2, "image": {"repository": "permitio/pdp-v2", "tag": "0.9.6"},
                 "apiKeySecretRef": {"name": "permit-api-key"},
                 "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                 "probe": {"intervalSeconds": 30}}
    }))
    .unwrap();

    let made = Api::<PermitResource>::namespaced(client.clone(), &ns)
        .create(&pp, &resource)
        .await
        .expect("PermitResource accepted");
    assert_eq!(made.spec, resource.spec, "PermitResource round-trips");
    let made = Api::<PermitRole>::namespaced(client.clone(), &ns)
        .create(&pp, &role)
        .await
        .expect("PermitRole accepted");
    assert_eq!(made.spec, role.spec, "PermitRole round-trips");
    let made = Api::<PermitTenant>::namespaced(client.clone(), &ns)
        .create(&pp, &tenant)
        .await
        .expect("PermitTenant accepted");
    assert_eq!(made.spec, tenant.spec, "PermitTenant round-trips");
    let made = Api::<PermitUser>::namespaced(client.clone(), &ns)
        .create(&pp, &user)
        .await
        .expect("PermitUser accepted");
    assert_eq!(made.spec, user.spec, "PermitUser round-trips");
    let made = Api::<RoleAssignment>::namespaced(client.clone(), &ns)
        .create(&pp, &assignment)
        .await
        .expect("RoleAssignment accepted");
    assert_eq!(made.spec, assignment.spec, "RoleAssignment round-trips");
    let made = Api::<PermitPDP>::namespaced(client.clone(), &ns)
        .create(&pp, &pdp)
        .await
        .expect("PermitPDP accepted");
    assert_eq!(made.spec, pdp.spec, "PermitPDP round-trips");
}

#[tokio::test]
async fn schema_violations_are_refused_at_create_with_the_field() {
    let env = kube_env!();
    let client = env.client();
    let ns = namespace(&env, &client, "schema").await;
    let pp = PostParams::default();

    let users = dynamic::<PermitUser>(&client, &ns);
    assert_refused(
        users
            .create(
                &pp,
                &object("PermitUser", "bad-email", json!({"email": "not-an-email"})),
            )
            .await,
        "PermitUser with a bad e-mail",
        422,
        &["spec.email", "not-an-email"],
    );
    assert_refused(
        users
            .create(
                &pp,
                &object("PermitUser", "bad-key", json!({"key": "jane doe"})),
            )
            .await,
        "PermitUser with a space in its key",
        422,
        &["spec.key", "should match"],
    );
    assert_refused(
        dynamic::<PermitTenant>(&client, &ns)
            .create(
                &pp,
                &object("PermitTenant", "bad-key", json!({"key": "acme.corp"})),
            )
            .await,
        "PermitTenant with a dot in its key",
        422,
        &["spec.key", "should match"],
    );
    assert_refused(
        dynamic::<RoleAssignment>(&client, &ns)
            .create(
                &pp,
                &object("RoleAssignment", "no-role", json!({"user": "jane"})),
            )
            .await,
        "RoleAssignment without spec.role",
        422,
        &["spec.role", "Required value"],
    );
    assert_refused(
        dynamic::<PermitRole>(&client, &ns)
            .create(
                &pp,
                &object("PermitRole", "bad-perm", json!({"permissions": ["post"]})),
            )
            .await,
        "PermitRole with a permission that is not resource:action",
        422,
        &["spec.permissions[0]", "should match"],
    );
    assert_refused(
        dynamic::<PermitPDP>(&client, &ns)
            .create(
                &pp,
                &object("PermitPDP", "latest", json!({"image": {"tag": "latest"}})),
            )
            .await,
        "PermitPDP on tag latest",
        422,
        &["spec.image.tag", "'latest' is not allowed"],
    );
    assert_refused(
        dynamic::<PermitPDP>(&client, &ns)
            .create(&pp, &object("PermitPDP", "many", json!({"replicas": 101})))
            .await,
        "PermitPDP with 101 replicas",
        422,
        &["spec.replicas"],
    );
}

#[tokio::test]
async fn unknown_fields_are_refused_under_strict_field_validation() {
    let env = kube_env!();
    let client = env.client();
    let ns = namespace(&env, &client, "strict").await;
    let tenant = object(
        "PermitTenant",
        "acme",
        json!({"name": "Acme", "colour": "red"}),
    );

    // Create (POST) with fieldValidation=Strict, as kubectl sends by default.
    let url = format!(
        "{}?fieldValidation=Strict",
        PermitTenant::url_path(&(), Some(&ns))
    );
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&tenant).unwrap())
        .unwrap();
    assert_refused(
        client.request::<DynamicObject>(req).await,
        "create with an unknown field, Strict",
        400,
        &["unknown field", "spec.colour"],
    );

    // Server-side apply (what permit-sync and `kubectl apply --server-side` use) refuses an
    // undeclared field whatever the directive, but kube-apiserver 1.37 answers 500, not 400
    // ("failed to create typed patch object"): callers must not retry such a 500 as transient.
    for directive in [ValidationDirective::Strict, ValidationDirective::Ignore] {
        let params = PatchParams::apply("kube-crds-test").validation(directive.clone());
        assert_refused(
            dynamic::<PermitTenant>(&client, &ns)
                .patch("acme", &params, &Patch::Apply(&tenant))
                .await,
            &format!("server-side apply with an unknown field, {directive:?}"),
            500,
            &[".spec.colour: field not declared in schema"],
        );
    }

    // Without Strict the field is pruned, never stored.
    let made = dynamic::<PermitTenant>(&client, &ns)
        .create(&PostParams::default(), &tenant)
        .await
        .expect("accepted when not strict");
    assert_eq!(
        made.data["spec"],
        json!({"name": "Acme"}),
        "unknown field pruned"
    );
}

#[tokio::test]
async fn spec_key_is_immutable() {
    let env = kube_env!();
    let client = env.client();
    let ns = namespace(&env, &client, "immutable").await;
    let pp = PostParams::default();
    let merge = |spec: Value| Patch::Merge(json!({ "spec": spec }));

    let tenants = Api::<PermitTenant>::namespaced(client.clone(), &ns);
    let spec = PermitTenantSpec {
        key: Some("acme".into()),
        ..Default::default()
    };
    tenants
        .create(&pp, &PermitTenant::new("acme", spec))
        .await
        .expect("created");
    assert_refused(
        tenants
            .patch(
                "acme",
                &PatchParams::default(),
                &merge(json!({"key": "other"})),
            )
            .await,
        "changing PermitTenant spec.key",
        422,
        &["spec.key", "spec.key is immutable"],
    );
    assert_refused(
        tenants
            .patch(
                "acme",
                &PatchParams::default(),
                &merge(json!({"key": null})),
            )
            .await,
        "removing PermitTenant spec.key",
        422,
        &["spec.key cannot be removed once set"],
    );
    // Without spec.key the key in force is metadata.name: adding another key would rename it.
    tenants
        .create(
            &pp,
            &PermitTenant::new("globex", PermitTenantSpec::default()),
        )
        .await
        .expect("created without a key");
    assert_refused(
        tenants
            .patch(
                "globex",
                &PatchParams::default(),
                &merge(json!({"key": "initech"})),
            )
            .await,
        "adding a PermitTenant spec.key other than metadata.name",
        422,
        &["spec.key", "may only be set to metadata.name"],
    );
    tenants
        .patch(
            "globex",
            &PatchParams::default(),
            &merge(json!({"key": "globex"})),
        )
        .await
        .expect("spec.key may be added with the key in force");

    // Other fields stay editable.
    let edited = tenants
        .patch(
            "acme",
            &PatchParams::default(),
            &merge(json!({"name": "Acme 2"})),
        )
        .await
        .expect("name is mutable");
    assert_eq!(edited.spec.name.as_deref(), Some("Acme 2"));

    let users = Api::<PermitUser>::namespaced(client.clone(), &ns);
    let spec = PermitUserSpec {
        key: Some("jane@example.com".into()),
        ..Default::default()
    };
    users
        .create(&pp, &PermitUser::new("jane", spec))
        .await
        .expect("created");
    assert_refused(
        users
            .patch(
                "jane",
                &PatchParams::default(),
                &merge(json!({"key": "jane@example.org"})),
            )
            .await,
        "changing PermitUser spec.key",
        422,
        &["spec.key is immutable"],
    );

    let assignments = Api::<RoleAssignment>::namespaced(client.clone(), &ns);
    let spec = RoleAssignmentSpec {
        user: "jane@example.com".into(),
        role: "viewer".into(),
        ..Default::default()
    };
    assignments
        .create(&pp, &RoleAssignment::new("jane-viewer", spec))
        .await
        .expect("created");
    assert_refused(
        assignments
            .patch(
                "jane-viewer",
                &PatchParams::default(),
                &merge(json!({"role": "editor"})),
            )
            .await,
        "changing RoleAssignment spec.role",
        422,
        &["user and role are immutable"],
    );
}

#[tokio::test]
async fn status_is_a_subresource() {
    let env = kube_env!();
    let client = env.client();
    let ns = namespace(&env, &client, "status").await;
    let users = Api::<PermitUser>::namespaced(client.clone(), &ns);
    let spec = PermitUserSpec {
        email: Some("jane@example.com".into()),
        ..Default::default()
    };
    let made = users
        .create(
            &PostParams::default(),
            &PermitUser::new("jane", spec.clone()),
        )
        .await
        .expect("created");
    assert_eq!(made.metadata.generation, Some(1));
    assert!(made.status.is_none(), "status is not set at create");

    let status = json!({"status": {
        "key": "jane",
        "observedGeneration": 1,
        "conditions": [{"type": "Synced", "status": "True", "reason": "Synced",
                        "lastTransitionTime": "2026-11-26T10:00:00Z", "observedGeneration": 1}],
    }});
    let patched = users
        .patch_status("jane", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status patched");
    let st = patched.status.clone().expect("status stored");
    assert_eq!(st.key.as_deref(), Some("jane"));
    assert_eq!(st.conditions[0].type_, "Synced");
    assert_eq!(patched.spec, spec, "a status patch leaves spec alone");
    assert_eq!(patched.metadata.generation, Some(1), "and the generation");

    // Through the main resource, status is ignored and spec changes bump the generation.
    let patched = users
        .patch(
            "jane",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"firstName": "Jane"}, "status": {"key": "mallory"}})),
        )
        .await
        .expect("spec patched");
    assert_eq!(patched.metadata.generation, Some(2));
    assert_eq!(patched.status.unwrap().key.as_deref(), Some("jane"));

    // Printer columns read status: `kubectl get` shows the key and the Synced condition.
    let out = env.kubectl(&["get", "permitusers", "-n", &ns, "--no-headers"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kubectl get: {out:?}");
    let cols: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        &cols[..4],
        ["jane", "jane", "jane@example.com", "True"],
        "{text}"
    );
}

#[tokio::test]
async fn kubectl_applies_crds_and_the_example_and_lists_them() {
    let env = kube_env!();
    let client = env.client();
    let ns = namespace(&env, &client, "kubectl").await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| {
        let out = env.kubectl(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{stdout}\n{stderr}"
        );
        (stdout, stderr)
    };

    // crds/ equals what the harness installed, so re-applying it is accepted without conflict;
    // any warning (such as an unknown `format`) is a defect of the generated CRDs.
    let crds = root.join("crds");
    let (_, stderr) = run(&["apply", "--server-side", "-f", crds.to_str().unwrap()]);
    assert!(
        !stderr.contains("Warning"),
        "the apiserver warns about crds/: {stderr}"
    );

    let example = root.join("examples/rbac-blog-reduced");
    let (stdout, stderr) = run(&[
        "apply",
        "--server-side",
        "-n",
        &ns,
        "-f",
        example.to_str().unwrap(),
    ]);
    assert!(!stderr.contains("Warning"), "warnings: {stderr}");
    for applied in [
        "permitresource.permitsync.dev/post",
        "permitrole.permitsync.dev/viewer",
        "permitrole.permitsync.dev/editor",
        "permittenant.permitsync.dev/acme",
        "permituser.permitsync.dev/jane",
        "roleassignment.permitsync.dev/jane-viewer-acme",
        "permitpdp.permitsync.dev/pdp",
    ] {
        assert!(stdout.contains(applied), "{applied} not applied:\n{stdout}");
    }

    // The `permit` category lists every kind, each with its printer columns.
    let (listed, _) = run(&["get", "permit", "-n", &ns]);
    for header in [
        "KEY",
        "EMAIL",
        "SYNCED",
        "READY",
        "USER",
        "ROLE",
        "TENANT",
        "REPLICAS",
        "AVAILABLE",
        "HEALTHY",
        "AGE",
    ] {
        assert!(listed.contains(header), "no {header} column:\n{listed}");
    }
    let line = listed
        .lines()
        .find(|l| l.starts_with("roleassignment.permitsync.dev/jane-viewer-acme"))
        .unwrap_or_else(|| panic!("no assignment row:\n{listed}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        &cols[1..4],
        ["jane@example.com", "viewer", "acme"],
        "{line}"
    );
    let (short, _) = run(&["get", "puser", "-n", &ns, "-o", "name"]);
    assert!(short.contains("permituser.permitsync.dev/bob"), "{short}");
}

#[tokio::test]
async fn rebac_objects_are_accepted_and_type_key_references_checked() {
    use permit_sync::kinds::{PermitRelationshipTuple, PermitResourceInstance};
    let env = kube_env!();
    let client = env.client();
    let ns = namespace(&env, &client, "rebac").await;
    let pp = PostParams::default();
    let resources = dynamic::<PermitResource>(&client, &ns);
    let comment = object(
        "PermitResource",
        "comment",
        json!({"key": "Comment", "actions": {"read": {}, "delete": {}},
               "relations": {"parent": {"subject": "Post"}},
               "roles": {"Author": {"permissions": ["read"]},
                         "Moderator": {"permissions": ["read", "delete"], "extends": ["Author"],
                                       "grantedTo": [{"role": "Author", "onResource": "Post", "linkedBy": "parent"}],
                                       "grantedToWhen": {"noDirectRolesOnObject": true}}}}),
    );
    resources
        .create(&pp, &comment)
        .await
        .expect("PermitResource with relations and roles accepted");
    let instances = dynamic::<PermitResourceInstance>(&client, &ns);
    instances
        .create(
            &pp,
            &object(
                "PermitResourceInstance",
                "comment-1",
                json!({"resource": "Comment", "tenant": "default", "attributes": {"n": 1}}),
            ),
        )
        .await
        .expect("PermitResourceInstance accepted");
    let tuples = dynamic::<PermitRelationshipTuple>(&client, &ns);
    tuples
        .create(
            &pp,
            &object(
                "PermitRelationshipTuple",
                "t",
                json!({"subject": "Post:post-1", "relation": "parent", "object": "Comment:comment-1"}),
            ),
        )
        .await
        .expect("PermitRelationshipTuple accepted");
    let assignments = dynamic::<RoleAssignment>(&client, &ns);
    assignments
        .create(
            &pp,
            &object(
                "RoleAssignment",
                "john-author",
                json!({"user": "john", "role": "Author", "resourceInstance": "Post:post-1"}),
            ),
        )
        .await
        .expect("an instance RoleAssignment accepted");

    // Malformed `type:key` references name their field.
    assert_refused(
        tuples
            .create(
                &pp,
                &object(
                    "PermitRelationshipTuple",
                    "bad",
                    json!({"subject": "post-1", "relation": "parent", "object": "Comment:comment-1"}),
                ),
            )
            .await,
        "a tuple subject without a type",
        422,
        &["spec.subject"],
    );
    assert_refused(
        dynamic::<PermitUser>(&client, &ns)
            .create(
                &pp,
                &object(
                    "PermitUser",
                    "emma",
                    json!({"roles": [{"role": "Author", "resourceInstance": "Post:"}]}),
                ),
            )
            .await,
        "an inline instance role without an instance key",
        422,
        &["spec.roles[0].resourceInstance"],
    );
    // A tuple has no update; an instance keeps its resource.
    let merge = |spec: Value| Patch::Merge(json!({ "spec": spec }));
    assert_refused(
        tuples
            .patch(
                "t",
                &PatchParams::default(),
                &merge(json!({"object": "Comment:comment-2"})),
            )
            .await,
        "changing a tuple's object",
        422,
        &["a tuple has no update"],
    );
    assert_refused(
        instances
            .patch(
                "comment-1",
                &PatchParams::default(),
                &merge(json!({"resource": "Post"})),
            )
            .await,
        "changing an instance's resource",
        422,
        &["spec.resource is immutable"],
    );
}
