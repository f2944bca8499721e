//! The S3 server of `MAILFERRY_TEST_S3_URL` (moto, started by
//! `scripts/test.sh`): fresh buckets and what they hold, read through a
//! client of its own so a test checks the bucket, not mailferry's view.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ObjectStore, ObjectStoreExt};

/// moto accepts any key pair; these are what tests give mailferry.
pub const ACCESS_KEY_ID: &str = "mailferry-test";
pub const SECRET_ACCESS_KEY: &str = "mailferry-test-secret";
pub const REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
pub struct S3Server {
    pub url: String,
}

impl S3Server {
    /// Fails (never skips) when `MAILFERRY_TEST_S3_URL` is not set.
    pub fn from_env() -> Self {
        crate::install_crypto();
        let url = std::env::var("MAILFERRY_TEST_S3_URL").expect(
            "MAILFERRY_TEST_S3_URL is not set: run the tests with scripts/test.sh, which starts an S3 server (moto) for them",
        );
        Self { url }
    }

    /// A new empty bucket with a unique name.
    pub async fn new_bucket(&self) -> String {
        let name = format!("mf-{}", uuid::Uuid::new_v4().simple());
        let status = reqwest::Client::new()
            .put(format!("{}/{name}", self.url))
            .send()
            .await
            .expect("create bucket")
            .status();
        assert!(status.is_success(), "creating bucket {name}: {status}");
        name
    }

    fn client(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(REGION)
            .with_endpoint(&self.url)
            .with_allow_http(true)
            .with_access_key_id(ACCESS_KEY_ID)
            .with_secret_access_key(SECRET_ACCESS_KEY)
            .build()
            .expect("S3 client")
    }

    /// Every object in `bucket`: key → bytes.
    pub async fn objects(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        let client = self.client(bucket);
        let metas: Vec<_> = client.list(None).try_collect().await.expect("list");
        let mut out = BTreeMap::new();
        for meta in metas {
            let bytes = client
                .get(&meta.location)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
            out.insert(meta.location.to_string(), bytes.to_vec());
        }
        out
    }

    /// Writes one object, as a crashed writer might have left it.
    pub async fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        self.client(bucket)
            .put(
                &object_store::path::Path::parse(key).expect("key"),
                bytes.to_vec().into(),
            )
            .await
            .expect("put");
    }

    /// The `sink` of an importer that writes to `bucket` under `prefix`.
    #[cfg(feature = "app")]
    pub fn sink_body(&self, bucket: &str, prefix: &str) -> serde_json::Value {
        serde_json::json!({
            "kind": "s3",
            "bucket": bucket,
            "endpoint": self.url,
            "region": REGION,
            "prefix": prefix,
            "access_key_id": ACCESS_KEY_ID,
            "secret_access_key": SECRET_ACCESS_KEY,
        })
    }
}
