//! Microsoft's own Python libraries (msal, msgraph-sdk), unmodified, against the emulator
//! over https, change-notification subscriptions included. The interpreter is `$MAILFERRY_TEST_PYTHON` (default `python3`); it must have
//! `msal` and `msgraph-sdk` installed, otherwise this test fails and says how to fix it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use msemu::{Emulator, Options, Seed, demo};

#[tokio::test]
async fn msal_and_msgraph_sdk_work_against_the_emulator() {
    crate::common::install_crypto();
    let python = std::env::var("MAILFERRY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/microsoft_clients.py");

    let probe = tokio::process::Command::new(&python)
        .args(["-c", "import msal, msgraph, requests"])
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run Python interpreter `{python}` ($MAILFERRY_TEST_PYTHON): {e}")
        });
    assert!(
        probe.status.success(),
        "`{python}` lacks Microsoft's client libraries: {}\n\
         Install them, e.g. `python3 -m venv .venv-test && .venv-test/bin/pip install msal msgraph-sdk`, \
         and set MAILFERRY_TEST_PYTHON=.venv-test/bin/python",
        String::from_utf8_lossy(&probe.stderr)
    );

    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let https = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let options = Options {
        auto_consent: true,
        // The script's own subscriber listens on plain http.
        allow_http_notification_urls: true,
        ..Options::default()
    };
    let emu = Emulator::start(Seed::demo(), options, http, Some(https))
        .await
        .expect("start");
    let ca = emu.ca_pem_path().expect("ca").to_path_buf();

    let child = tokio::process::Command::new(&python)
        .arg(&script)
        .env("MSEMU_BASE", emu.https_base_url().expect("https"))
        .env("MSEMU_TENANT", demo::TENANT_ID)
        .env("MSEMU_CLIENT_ID", demo::CLIENT_ID)
        .env("MSEMU_CLIENT_SECRET", demo::CLIENT_SECRET)
        .env("MSEMU_DAEMON_CLIENT_ID", demo::DAEMON_CLIENT_ID)
        .env("MSEMU_DAEMON_CLIENT_SECRET", demo::DAEMON_CLIENT_SECRET)
        .env("MSEMU_REDIRECT_URI", demo::REDIRECT_URI)
        .env("MSEMU_USER", demo::ALICE)
        .env("MSEMU_SHARED", demo::SHARED)
        // requests (msal) and httpx (msgraph-sdk) read these to trust the generated CA.
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn python");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("python script timed out")
        .expect("python output");
    emu.shutdown().await;

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "script failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for step in [
        "OK auth code exchange scope=Mail.ReadWrite Mail.ReadWrite.Shared User.Read profile openid",
        "OK code reuse rejected 54005",
        "OK refresh rotated",
        "OK old refresh token rejected 70008",
        "OK client credentials",
        "OK bad secret rejected 7000215",
        "OK certificate credential RS256 x5t",
        "OK certificate credential PS256 x5t#S256",
        "OK unknown certificate rejected 700027",
        "OK me alice@contoso.example",
        "OK mail folders 10 in 4 pages",
        "OK messages 3 in 2 pages",
        "OK attachment invoice-",
        "OK move gave a new id; old id is 404",
        "OK patch isRead",
        "OK shared mailbox via Mail.ReadWrite.Shared",
        "OK app token reads mailbox, /me refused",
        "created after the validation handshake",
        "OK a wrong validation echo and an 8-day expiry are refused",
        "OK subscription renewed",
        "OK a new mail in the Inbox was notified with the clientState; its id reads the message",
        "OK subscription deleted",
        "OK all",
    ] {
        assert!(
            stdout.contains(step),
            "missing `{step}` in:\n{stdout}\n--- stderr\n{stderr}"
        );
    }
}
