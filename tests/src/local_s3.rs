//! A real S3 wire implementation on loopback: s3s over a directory (s3s-fs).
//!
//! It speaks the S3 REST protocol with SigV4 (access key `test`, secret `test`), including multipart
//! uploads and aborts, so the production S3 adapter is exercised through the real AWS SDK.

use std::path::{Path, PathBuf};

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Credentials, Region};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Access key and secret accepted by the local S3.
pub const ACCESS_KEY: &str = "test";
/// Region the clients are configured with.
pub const REGION: &str = "us-east-1";

/// A running local S3 server. Stops when dropped.
pub struct LocalS3 {
    endpoint: String,
    root: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    _stop: oneshot::Sender<()>,
}

impl LocalS3 {
    /// Starts a server over a fresh temporary directory on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        let mut server = Self::start_in(&root).await?;
        server._tempdir = Some(dir);
        Ok(server)
    }

    /// Starts a server over `root` (which must exist) on a free loopback port.
    pub async fn start_in(root: &Path) -> std::io::Result<Self> {
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, ACCESS_KEY));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { continue };
                        let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                        tokio::spawn(async move {
                            let _ = conn.await;
                        });
                    }
                }
            }
        });
        Ok(Self {
            endpoint,
            root: root.to_path_buf(),
            _tempdir: None,
            _stop: stop_tx,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The directory holding the buckets.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An SDK client for this server.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        client_for(&self.endpoint).await
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        open_uploads_in(&self.root)
    }
}

/// An S3 client for a local endpoint: path-style, static test credentials, `us-east-1`.
pub async fn client_for(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(ACCESS_KEY, ACCESS_KEY, None, None, "static"))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build())
}

/// Counts the pending-upload records s3s-fs keeps in its root directory.
pub fn open_uploads_in(root: &Path) -> usize {
    std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.starts_with(".upload-") && name.ends_with(".json")
                })
                .count()
        })
        .unwrap_or(0)
}

/// Every key in `bucket`, sorted.
pub async fn list_keys(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = client.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(Ok(page)) = pages.next().await {
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
    }
    keys.sort();
    keys
}

/// The whole content of an object (tests only: small objects, or hashing).
pub async fn get_object(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<(Vec<u8>, Option<String>)> {
    let out = client.get_object().bucket(bucket).key(key).send().await.ok()?;
    let content_type = out.content_type().map(str::to_owned);
    let body = out.body.collect().await.ok()?.into_bytes().to_vec();
    Some((body, content_type))
}
