//! A local AWS: moto's server (S3, DynamoDB, Secrets Manager, Step Functions) as a child process on a
//! free loopback port, spoken to over the real wire protocols by the real AWS SDK.
//!
//! The server comes from the repository's virtualenv (`make tools` installs `moto[server]` into
//! `.venv/`); `AMZPIPE_MOTO_SERVER` names another executable. Each [`LocalAws`] is its own server with
//! its own state, stopped (killed) when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::{Credentials, Region};
use tokio::process::{Child, Command};

/// The region every local client uses.
pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct LocalAws {
    endpoint: String,
    port: u16,
    recording: PathBuf,
    _child: Child,
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.recording);
    }
}

/// Where the moto server executable is: `AMZPIPE_MOTO_SERVER`, or the repository's `.venv`.
pub fn moto_server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("AMZPIPE_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
}

/// A free loopback port (free when asked; bind it soon).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalAws {
    /// Starts a server and waits until it answers (about a second).
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with_callback_port(None).await
    }

    /// Starts a server whose Step Functions interpreter makes its own AWS calls (Lambda invokes, service
    /// integrations) to `callback_port` on localhost instead of to the server itself: a router there
    /// sends Lambda invokes to the functions and everything else back to this server.
    pub async fn start_with_callback_port(callback_port: Option<u16>) -> std::io::Result<Self> {
        let path = moto_server_path();
        if !path.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{} is missing: run `make tools` (installs moto into .venv/) or set AMZPIPE_MOTO_SERVER",
                    path.display()
                ),
            ));
        }
        let port = free_port()?;
        let recording = std::env::temp_dir().join(format!("amzpipe-moto-{}-{port}.jsonl", std::process::id()));
        let child = Command::new(&path)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // moto's own Step Functions interpreter calls back to this port.
            .env("MOTO_PORT", callback_port.unwrap_or(port).to_string())
            // The request recorder (off until `start_recording`) writes here.
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let server = Self {
            endpoint,
            port,
            recording,
            _child: child,
        };
        server.wait_ready(Duration::from_secs(60)).await?;
        Ok(server)
    }

    async fn wait_ready(&self, limit: Duration) -> std::io::Result<()> {
        let started = Instant::now();
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{}/moto-api/", self.endpoint)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "moto server did not start",
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts recording every request the server receives (method, URL, headers, body), from an empty
    /// recording.
    pub async fn start_recording(&self) -> Result<(), reqwest::Error> {
        let http = reqwest::Client::new();
        for action in ["reset-recording", "start-recording"] {
            http.post(format!("{}/moto-api/recorder/{action}", self.endpoint))
                .send()
                .await?
                .error_for_status()?;
        }
        Ok(())
    }

    /// Stops recording and returns what was recorded, one JSON object per request.
    pub async fn stop_recording(&self) -> Result<Vec<serde_json::Value>, Box<dyn std::error::Error>> {
        let http = reqwest::Client::new();
        http.post(format!("{}/moto-api/recorder/stop-recording", self.endpoint))
            .send()
            .await?
            .error_for_status()?;
        let text = http
            .get(format!("{}/moto-api/recorder/download-recording", self.endpoint))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        // moto's threads append entries concurrently, so two may share a line: read a stream of values.
        serde_json::Deserializer::from_str(&text)
            .into_iter::<serde_json::Value>()
            .map(|v| v.map_err(Into::into))
            .collect()
    }

    /// An SDK configuration for this server reached through `endpoint` (a proxy in front of it, such
    /// as [`crate::aws_faults::FaultProxy`]).
    pub async fn sdk_config_via(&self, endpoint: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "local"))
            .endpoint_url(endpoint)
            .load()
            .await
    }

    /// An SDK configuration pointed at this server whose requests are signed with `access_key`: how
    /// a test tells apart the calls of different functions (each as its own role) in a recording.
    pub async fn sdk_config_as(&self, access_key: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(access_key, "test", None, None, "local"))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }

    /// Turns on moto's Step Functions interpreter (off by default: executions would stay `RUNNING`).
    pub async fn enable_state_machines(&self) -> Result<(), reqwest::Error> {
        reqwest::Client::new()
            .post(format!("{}/moto-api/config", self.endpoint))
            .json(
                &serde_json::json!({"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}),
            )
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// An SDK configuration pointed at this server (region `us-east-1`, dummy credentials).
    pub async fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_as("test").await
    }

    /// An S3 client (path-style) for this server.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = self.sdk_config().await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        )
    }

    /// The keys and sizes of the objects in `bucket` (up to 1,000), in key order.
    pub async fn objects(&self, bucket: &str) -> Result<Vec<(String, i64)>, Box<dyn std::error::Error>> {
        let out = self.s3().await.list_objects_v2().bucket(bucket).send().await?;
        Ok(out
            .contents()
            .iter()
            .map(|o| (o.key().unwrap_or_default().to_owned(), o.size().unwrap_or_default()))
            .collect())
    }

    /// The bytes of one object.
    pub async fn object_bytes(&self, bucket: &str, key: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let out = self.s3().await.get_object().bucket(bucket).key(key).send().await?;
        Ok(out.body.collect().await?.into_bytes().to_vec())
    }

    /// Stores `body` as one object.
    pub async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
        self.s3()
            .await
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await?;
        Ok(())
    }

    /// How many multipart uploads are open in `bucket`.
    pub async fn open_uploads(&self, bucket: &str) -> Result<usize, Box<dyn std::error::Error>> {
        let out = self.s3().await.list_multipart_uploads().bucket(bucket).send().await?;
        Ok(out.uploads().len())
    }
}
