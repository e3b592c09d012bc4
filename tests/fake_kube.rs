//! The fake API server (tests/common/fake_kube.rs) answers kube-rs the way the real
//! API server does; the other Kubernetes tests rely on it.

mod common;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DynamicObject, PostParams, WatchEvent, WatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

use common::fake_kube::FakeKube;

async fn client(fake: &FakeKube) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(fake.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn routes(client: kube::Client) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<gateway_api::httproutes::HttpRoute>(&());
    Api::namespaced_with(client, "default", &resource)
}

fn code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(status) => status.code,
        other => panic!("not an API error: {other}"),
    }
}

fn route(host: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {"hostnames": [host]},
        "status": {"parents": []},
    }))
    .unwrap()
}

#[tokio::test]
async fn writes_are_optimistic_and_status_is_a_subresource() {
    let fake = FakeKube::start();
    let api = routes(client(&fake).await);
    let pp = PostParams::default();

    let created = api.create(&pp, &route("a")).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.data.get("status"), None, "create ignores status");
    assert_eq!(code(api.create(&pp, &route("a")).await.unwrap_err()), 409);

    // A spec change bumps resourceVersion and generation; status is not taken.
    let mut update = created.clone();
    update.data["spec"]["hostnames"] = json!(["b"]);
    update.data["status"] = json!({"parents": [{"controllerName": "x"}]});
    let updated = api.replace("r", &pp, &update).await.unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(updated.metadata.generation, Some(2));
    assert_eq!(updated.data.get("status"), None);
    // The old resourceVersion is stale now.
    assert_eq!(code(api.replace("r", &pp, &update).await.unwrap_err()), 409);
    // The same object again is no write at all.
    let same = api.replace("r", &pp, &updated).await.unwrap();
    assert_eq!(
        same.metadata.resource_version,
        updated.metadata.resource_version
    );

    // The status subresource takes status only, and keeps generation.
    let mut with_status = updated.clone();
    with_status.data["status"] = json!({"parents": []});
    with_status.data["spec"]["hostnames"] = json!(["ignored"]);
    let written = api.replace_status("r", &pp, &with_status).await.unwrap();
    assert_eq!(written.data["status"], json!({"parents": []}));
    assert_eq!(written.data["spec"]["hostnames"], json!(["b"]));
    assert_eq!(written.metadata.generation, Some(2));
    assert_eq!(
        code(
            api.replace_status("r", &pp, &with_status)
                .await
                .unwrap_err()
        ),
        409
    );
    let writes = fake.status_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");

    api.delete("r", &Default::default()).await.unwrap();
    assert_eq!(code(api.get("r").await.unwrap_err()), 404);

    // Leases: create, then compare-and-swap on resourceVersion.
    let leases: Api<Lease> = Api::namespaced(client(&fake).await, "default");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "l"}, "spec": {"holderIdentity": "a"},
    }))
    .unwrap();
    let held = leases.create(&pp, &lease).await.unwrap();
    let mut taken = held.clone();
    taken.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases.replace("l", &pp, &taken).await.unwrap();
    assert_eq!(
        code(leases.replace("l", &pp, &taken).await.unwrap_err()),
        409
    );
}

#[tokio::test]
async fn watches_stream_changes_and_say_410_after_compaction() {
    let fake = FakeKube::start();
    let api = routes(client(&fake).await);
    let pp = PostParams::default();
    let list = api.list(&Default::default()).await.unwrap();
    let start = list.metadata.resource_version.unwrap();

    let mut events = api
        .watch(&WatchParams::default().timeout(10), &start)
        .await
        .unwrap()
        .boxed();
    let created = api.create(&pp, &route("a")).await.unwrap();
    api.delete("r", &Default::default()).await.unwrap();
    let first = events.try_next().await.unwrap().unwrap();
    assert!(
        matches!(first, WatchEvent::Added(o) if o.metadata.resource_version == created.metadata.resource_version)
    );
    assert!(matches!(
        events.try_next().await.unwrap().unwrap(),
        WatchEvent::Deleted(_)
    ));

    // Resuming from before the compaction is 410 Gone, as an ERROR event.
    fake.compact();
    let mut events = api
        .watch(&WatchParams::default().timeout(10), &start)
        .await
        .unwrap()
        .boxed();
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert_eq!(fake.gone_answers(), 1);
    // From the current version it works, and bookmarks carry the version on.
    let now = fake.resource_version().to_string();
    let mut events = api
        .watch(&WatchParams::default().timeout(10), &now)
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        events.try_next().await.unwrap().unwrap(),
        WatchEvent::Bookmark(b) if b.metadata.resource_version == now
    ));
}

#[test]
fn it_serves_every_kind_gantry_reads_with_the_subresources_it_writes() {
    use gantry::provider::kubernetes::kinds;
    for kind in kinds::watched() {
        let r = &kind.resource;
        assert!(
            common::fake_kube::serves(&r.group, &r.version, &r.plural, kind.writes_status),
            "{} {}",
            r.api_version,
            r.kind
        );
    }
    for r in kinds::referenced() {
        assert!(common::fake_kube::serves(
            &r.group, &r.version, &r.plural, false
        ));
    }
}

/// Server-side apply of status as the API server does it for atomic lists, through
/// kube-rs's own `patch_status` with `Patch::Apply`.
#[tokio::test]
async fn status_apply_owns_fields_conflicts_and_removes_what_is_no_longer_applied() {
    use kube::api::{Patch, PatchParams};
    let fake = FakeKube::start();
    let api = routes(client(&fake).await);
    api.create(&PostParams::default(), &route("a"))
        .await
        .unwrap();
    let apply = |status: serde_json::Value, rv: Option<&str>| {
        let mut body = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                              "metadata": {"name": "r"}, "status": status});
        if let Some(rv) = rv {
            body["metadata"]["resourceVersion"] = json!(rv);
        }
        Patch::Apply(body)
    };
    let theirs = json!({"parents": [{"controllerName": "other"}]});
    let ours = json!({"parents": [{"controllerName": "gantry"}]});
    let other = PatchParams::apply("other");
    let written = api
        .patch_status("r", &other, &apply(theirs.clone(), None))
        .await
        .unwrap();
    assert_eq!(written.data["status"], theirs);

    // The field is another manager's: a conflict unless forced.
    let gantry = PatchParams::apply("gantry");
    let refused = api
        .patch_status("r", &gantry, &apply(ours.clone(), None))
        .await;
    assert_eq!(code(refused.unwrap_err()), 409);
    // A stale resourceVersion is a conflict even when forced.
    let forced = PatchParams::apply("gantry").force();
    let stale = api
        .patch_status("r", &forced, &apply(ours.clone(), Some("1")))
        .await;
    assert_eq!(code(stale.unwrap_err()), 409);
    let rv = written.metadata.resource_version.as_deref();
    let taken = api
        .patch_status("r", &forced, &apply(ours.clone(), rv))
        .await
        .unwrap();
    assert_eq!(taken.data["status"], ours);
    let managers: Vec<_> = (taken.metadata.managed_fields.iter().flatten())
        .map(|m| (m.manager.clone().unwrap(), m.operation.clone().unwrap()))
        .collect();
    assert_eq!(managers, [("gantry".to_string(), "Apply".to_string())]);

    // The same apply again changes nothing: no new resourceVersion.
    let again = api
        .patch_status("r", &forced, &apply(ours.clone(), None))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        taken.metadata.resource_version
    );
    // A field no longer applied is removed; another manager's stays.
    fake.apply_status_as("ipam", "HTTPRoute", "default", "r", json!({"extra": 1}));
    let dropped = api
        .patch_status("r", &forced, &apply(json!({}), None))
        .await
        .unwrap();
    assert_eq!(dropped.data["status"], json!({"extra": 1}));
    // A field an update under the same name wrote belongs to another manager
    // ("gantry", Update): an apply that leaves it out does not remove it.
    let mut object = api.get_status("r").await.unwrap();
    object.data["status"]["old"] = json!(true);
    let put = PostParams {
        field_manager: Some("gantry".into()),
        ..Default::default()
    };
    api.replace_status("r", &put, &object).await.unwrap();
    let kept = api
        .patch_status("r", &forced, &apply(json!({}), None))
        .await
        .unwrap();
    assert_eq!(kept.data["status"]["old"], true);
    let operations: Vec<_> = (kept.metadata.managed_fields.iter().flatten())
        .filter(|m| m.manager.as_deref() == Some("gantry"))
        .map(|m| m.operation.clone().unwrap())
        .collect();
    assert_eq!(operations, ["Update"]);
    // Applying the main resource is not something gantry does, nor the fake.
    let main = api.patch("r", &forced, &apply(json!({}), None)).await;
    assert_eq!(code(main.unwrap_err()), 415);
}

#[tokio::test]
async fn rbac_refuses_what_the_roles_do_not_grant() {
    use common::fake_kube_apply::Rbac;
    let fake = FakeKube::start();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(
        "kind: ClusterRole
metadata: {name: read-routes}
rules: [{apiGroups: [gateway.networking.k8s.io], resources: [httproutes], verbs: [list]}]
---
kind: RoleBinding
metadata: {name: read-routes, namespace: default}
roleRef: {kind: ClusterRole, name: read-routes}
subjects: [{kind: ServiceAccount, name: gantry, namespace: gantry-system}]
",
    )
    .unwrap();
    fake.enforce_rbac(Rbac::from_documents(&documents, "gantry-system", "gantry"));
    let client = client(&fake).await;
    let in_default = routes(client.clone());
    in_default.list(&Default::default()).await.unwrap();
    let resource = ApiResource::erase::<gateway_api::httproutes::HttpRoute>(&());
    let everywhere: Api<DynamicObject> = Api::all_with(client, &resource);
    assert_eq!(
        code(everywhere.list(&Default::default()).await.unwrap_err()),
        403
    );
    assert_eq!(code(in_default.get("r").await.unwrap_err()), 403);
    assert_eq!(
        fake.denied(),
        [
            "list httproutes (all namespaces)",
            "get httproutes (default)"
        ]
    );
}
