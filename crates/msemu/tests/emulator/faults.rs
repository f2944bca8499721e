//! Faults on demand and the always-on per-mailbox concurrency limit.

use std::time::{Duration, Instant};

use msemu::{FaultKind, FaultRule, demo};
use serde_json::{Value, json};

use crate::common::{self, graph_error};

fn rule(kind: FaultKind, count: Option<u32>) -> FaultRule {
    FaultRule {
        count,
        ..FaultRule::graph(kind)
    }
}

#[tokio::test]
async fn throttling_with_fractional_retry_after_for_the_next_n_requests() {
    let env = common::start().await;
    let t = env.alice().await;
    let r = env
        .admin_post(
            "/_emulator/faults",
            json!({"kind": "throttle", "retry_after": 0.2, "count": 2}),
        )
        .await;
    assert_eq!(r.status(), 201);
    for _ in 0..2 {
        let resp = env.get(&t, "/v1.0/me/mailFolders").await;
        assert_eq!(resp.headers()["retry-after"], "0.2");
        let (code, _) = graph_error(resp, 429).await;
        assert_eq!(code, "TooManyRequests");
    }
    assert_eq!(env.get(&t, "/v1.0/me/mailFolders").await.status(), 200);
    assert_eq!(env.emu().counters().faults_fired, 2);
    env.stop().await;
}

#[tokio::test]
async fn rates_statuses_and_latency() {
    let env = common::start().await;
    let t = env.alice().await;
    let always = env.emu().add_fault(FaultRule {
        rate: Some(1.0),
        ..rule(
            FaultKind::Status {
                status: 503,
                retry_after: Some(1.0),
            },
            None,
        )
    });
    for _ in 0..3 {
        let resp = env.get(&t, "/v1.0/me").await;
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_eq!(graph_error(resp, 503).await.0, "serviceNotAvailable");
    }
    let del = env
        .http
        .delete(env.url(&format!("/_emulator/faults/{always}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status(), 204);

    env.emu().add_fault(FaultRule {
        rate: Some(0.0),
        ..rule(FaultKind::Drop, None)
    });
    env.emu().add_fault(rule(
        FaultKind::Status {
            status: 504,
            retry_after: None,
        },
        Some(1),
    ));
    let resp = env.get(&t, "/v1.0/me").await;
    assert_eq!(resp.status(), 504);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(env.get(&t, "/v1.0/me").await.status(), 200);
    env.emu().clear_faults();

    env.emu()
        .add_fault(rule(FaultKind::Latency { ms: 300 }, Some(1)));
    let start = Instant::now();
    assert_eq!(env.get(&t, "/v1.0/me").await.status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(300));

    // Faults can target the identity platform too.
    env.emu().add_fault(FaultRule {
        path_prefix: format!("/{}/oauth2/v2.0/token", demo::TENANT_ID),
        ..rule(FaultKind::Throttle { retry_after: 0.5 }, Some(1))
    });
    let resp = env
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", demo::DAEMON_CLIENT_ID),
        ])
        .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "0.5");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"], "temporarily_unavailable");
    env.stop().await;
}

#[tokio::test]
async fn dropped_connection() {
    let env = common::start().await;
    let t = env.alice().await;
    env.emu().add_fault(rule(FaultKind::Drop, Some(1)));
    let err = env
        .http
        .get(env.url("/v1.0/me"))
        .bearer_auth(&t)
        .send()
        .await;
    assert!(err.is_err(), "expected a dropped connection, got {err:?}");
    assert_eq!(env.get(&t, "/v1.0/me").await.status(), 200);
    env.stop().await;
}

#[tokio::test]
async fn concurrency_limit_per_app_and_mailbox() {
    let env = common::start().await;
    let t = env.alice().await;
    env.emu().add_fault(FaultRule {
        path_prefix: "/v1.0/me".into(),
        ..rule(FaultKind::Latency { ms: 400 }, None)
    });
    let reqs = (0..6).map(|_| env.get(&t, "/v1.0/me/mailFolders"));
    let results = futures_util::future::join_all(reqs).await;
    let mut ok = 0;
    let mut throttled = 0;
    for r in results {
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert_eq!(graph_error(r, 429).await.0, "ApplicationThrottled");
                throttled += 1;
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!((ok, throttled), (4, 2));
    let c = env.emu().counters();
    let alice = &c.mailboxes[demo::ALICE];
    // Four admitted plus the refused one trying to get in.
    assert_eq!(alice.max_in_flight, 5);
    assert_eq!(alice.concurrency_throttled, 2);
    assert_eq!(alice.in_flight, 0);

    // Another mailbox is not affected by alice's load.
    let shared = format!("/v1.0/users/{}/mailFolders", demo::SHARED);
    let reqs = (0..4)
        .map(|_| env.get(&t, &shared))
        .chain((0..2).map(|_| env.get(&t, "/v1.0/me/mailFolders")));
    let statuses: Vec<u16> = futures_util::future::join_all(reqs)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses, vec![200; 6]);
    env.stop().await;
}
