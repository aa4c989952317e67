//! The Kubernetes test environment itself: extra users, impersonation, and stop/restart in place.

#[path = "support/kube_env.rs"]
mod kube_env;

use kube::api::{Api, PostParams};
use permit_sync::kinds::{PermitTenant, PermitTenantSpec};

fn forbidden<T: std::fmt::Debug>(result: kube::Result<T>, who: &str) {
    match result {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{who}: {}", s.message),
        other => panic!("{who}: expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn users_and_impersonation_meet_rbac() {
    let Some(env) = kube_env::shared() else {
        return;
    };
    let admin = env.client();
    let ns = env.namespace(&admin, "users").await.unwrap();

    // A certificate user without any binding is authenticated but may not list.
    let alice = env.user("alice", &["testers"]).unwrap();
    forbidden(
        Api::<PermitTenant>::namespaced(alice.client(), &ns)
            .list(&Default::default())
            .await,
        "alice before binding",
    );
    let out = env.kubectl_as(&alice.kubeconfig, &["auth", "whoami", "-o", "name"]);
    assert!(out.status.success(), "kubectl auth whoami: {out:?}");

    // The controller's ServiceAccount, impersonated by admin; bind it to a role and it may write.
    let sa = kube::Client::try_from(env.service_account(&ns, "permit-sync")).unwrap();
    let tenants = Api::<PermitTenant>::namespaced(sa.clone(), &ns);
    forbidden(
        tenants.list(&Default::default()).await,
        "ServiceAccount before binding",
    );
    let rbac = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: tenants, namespace: {ns}}}\n\
         rules: [{{apiGroups: [permitsync.dev], resources: [permittenants], verbs: ['*']}}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: tenants, namespace: {ns}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: tenants}}\n\
         subjects: [{{kind: ServiceAccount, name: permit-sync, namespace: {ns}}}]\n"
    );
    let file = env.dir().join(format!("{ns}-rbac.yaml"));
    std::fs::write(&file, rbac).unwrap();
    let out = env.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "RBAC applied: {out:?}");
    // RBAC reaches the authorizer through an informer: allow it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match tenants.list(&Default::default()).await {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the ServiceAccount still may not list after 30s: {e}"),
        }
    }
    let spec = PermitTenantSpec::default();
    tenants
        .create(&PostParams::default(), &PermitTenant::new("acme", spec))
        .await
        .expect("the bound ServiceAccount creates a tenant");
    let made = Api::<PermitTenant>::namespaced(admin, &ns)
        .get("acme")
        .await
        .unwrap();
    let manager = made.metadata.managed_fields.unwrap_or_default();
    assert!(!manager.is_empty(), "managed fields recorded");
}

#[tokio::test]
async fn a_private_environment_restarts_in_place_and_keeps_its_data() {
    let Some(env) = kube_env::KubeEnv::start()
        .await
        .expect("environment starts")
    else {
        return;
    };
    let url = env.url();
    let ns = env.namespace(&env.client(), "restart").await.unwrap();
    Api::<PermitTenant>::namespaced(env.client(), &ns)
        .create(
            &PostParams::default(),
            &PermitTenant::new("acme", PermitTenantSpec::default()),
        )
        .await
        .unwrap();

    env.stop();
    assert!(!env.is_running());
    // A client built before the stop fails fast (connection refused), it does not hang.
    let down = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        Api::<PermitTenant>::namespaced(env.client(), &ns).get("acme"),
    )
    .await
    .expect("a call to a stopped apiserver returns within 30s");
    assert!(down.is_err(), "the apiserver is down");

    let t = std::time::Instant::now();
    env.start_again().await.expect("restarts");
    eprintln!("restart took {:.1}s", t.elapsed().as_secs_f64());
    assert!(env.is_running());
    assert_eq!(env.url(), url, "same port");
    let kept = Api::<PermitTenant>::namespaced(env.client(), &ns)
        .get("acme")
        .await
        .expect("data survives the restart");
    assert_eq!(kept.metadata.name.as_deref(), Some("acme"));

    // The apiserver alone goes down and comes back; etcd (and the data) stay.
    env.stop_apiserver();
    assert!(!env.is_running());
    env.start_again().await.expect("the apiserver restarts");
    Api::<PermitTenant>::namespaced(env.client(), &ns)
        .get("acme")
        .await
        .expect("data still there");
}
