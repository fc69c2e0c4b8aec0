//! `onboard`: a seller's or advertiser's authorisation turned into a stored credential set.
//!
//! Ads, AMC and Slate use Login with Amazon's authorization-code grant: the consent URL for the
//! region and scope is printed, the browser comes back to a one-shot listener on
//! `http://localhost:<port>/callback` (or the code is pasted), the code is exchanged for a refresh
//! token, and client id, client secret and refresh token are stored in Secrets Manager. SP-API takes
//! the refresh token Seller Central shows when the seller authorises the application. Then the
//! credentials are proven by listing what they reach.

use std::io::IsTerminal;
use std::time::Duration;

use amzpipe::adapters::lwa::{self, LwaClient, LwaError};
use amzpipe::adapters::secrets::SecretValue;
use amzpipe::domain::Region;
use axum::extract::{Query, State};
use axum::response::Html;
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::context::Context;
use crate::discover::{self, Source};
use crate::error::{CliError, CliResult};
use crate::output::print_json;

/// The Ads and AMC scope.
pub const ADS_SCOPE: &str = "advertising::campaign_management";

/// An Amazon region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegionArg {
    /// North America.
    Na,
    /// Europe, India, Middle East, Africa.
    Eu,
    /// Far East.
    Fe,
}

impl From<RegionArg> for Region {
    fn from(r: RegionArg) -> Self {
        match r {
            RegionArg::Na => Region::Na,
            RegionArg::Eu => Region::Eu,
            RegionArg::Fe => Region::Fe,
        }
    }
}

/// How to onboard.
#[derive(Debug, Args)]
#[command(
    after_help = "The LWA client secret is read from AMZPIPE_CLIENT_SECRET, or asked for (hidden). \
For sp, the refresh token is read from AMZPIPE_REFRESH_TOKEN, or asked for (hidden). Neither is ever printed."
)]
pub struct OnboardArgs {
    /// Which source the credentials are for.
    #[arg(value_enum)]
    pub source: Source,
    /// The Secrets Manager secret to store them in: created, or given a new version. A deployed
    /// stack's functions read secrets under its prefix (`amzpipe/<stack>/`).
    #[arg(long, value_name = "NAME")]
    pub secret: String,
    /// The region of the seller's or advertiser's account.
    #[arg(long, value_enum, default_value = "na")]
    pub region: RegionArg,
    /// The LWA client id of the security profile (`amzn1.application-oa2-client.…`).
    #[arg(long)]
    pub client_id: String,
    /// The LWA scope to ask for (Ads and AMC: advertising::campaign_management; Slate: the scope its
    /// API documentation gives your application).
    #[arg(long)]
    pub scope: Option<String>,
    /// The authorization code, when you already have one (the redirect's `code=`).
    #[arg(long, conflicts_with = "paste")]
    pub code: Option<String>,
    /// Paste the code (or the whole redirect URL) instead of catching the redirect on localhost.
    #[arg(long)]
    pub paste: bool,
    /// The loopback port the browser is sent back to: http://localhost:<port>/callback must be one
    /// of the security profile's "Allowed Return URLs".
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// The redirect URI the consent used, when it is not the loopback one (with --code or --paste).
    #[arg(long)]
    pub redirect_uri: Option<String>,
    /// Seconds to wait for the browser to come back.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Store without listing what the credentials reach.
    #[arg(long)]
    pub no_verify: bool,
}

/// What `onboard --json` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Onboarded {
    secret: String,
    created: bool,
    region: String,
    reaches: Option<discover::Listing>,
}

fn secret_input(ctx: &Context, variable: &str, prompt: &str) -> CliResult<SecretString> {
    if let Some(value) = ctx.env.get(variable) {
        return Ok(SecretString::from(value.trim().to_owned()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!("{variable} is not set"))
            .hint(format!("set {variable}, or run in a terminal to be asked for it")));
    }
    let value = rpassword::prompt_password(prompt).map_err(|e| CliError::failed(format!("reading {variable}: {e}")))?;
    if value.trim().is_empty() {
        return Err(CliError::usage(format!("no {variable} given")));
    }
    Ok(SecretString::from(value.trim().to_owned()))
}

/// The code and state of a pasted code or redirect URL.
fn parse_pasted(text: &str) -> (String, Option<String>) {
    let text = text.trim();
    let query = text.split_once('?').map_or(text, |(_, q)| q);
    if !query.contains("code=") {
        return (text.to_owned(), None);
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    (get("code").unwrap_or_default(), get("state"))
}

/// What the loopback listener heard.
#[derive(Debug, serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(State(tx): State<mpsc::Sender<Callback>>, Query(cb): Query<Callback>) -> Html<&'static str> {
    let ok = cb.code.is_some();
    let _ = tx.try_send(cb);
    Html(if ok {
        "<html><body><h3>amzpipe: authorised.</h3><p>You can close this window; the terminal goes on.</p></body></html>"
    } else {
        "<html><body><h3>amzpipe: the authorisation did not complete.</h3><p>See the terminal.</p></body></html>"
    })
}

/// Waits for the browser on `listeners` (localhost over IPv4, and IPv6 when available); returns the
/// code after checking `state`.
async fn listen(listeners: Vec<TcpListener>, state: &str, timeout: Duration) -> CliResult<String> {
    let (tx, mut rx) = mpsc::channel::<Callback>(4);
    let app = axum::Router::new()
        .route("/callback", axum::routing::get(callback))
        .with_state(tx);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    for listener in listeners {
        let mut stop = stop_rx.clone();
        let app = app.clone();
        servers.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await;
        }));
    }
    let heard = tokio::time::timeout(timeout, rx.recv()).await;
    let _ = stop_tx.send(true);
    for server in servers {
        let _ = server.await;
    }
    let cb = match heard {
        Ok(Some(cb)) => cb,
        Ok(None) => return Err(CliError::failed("the loopback listener stopped")),
        Err(_) => {
            return Err(CliError::failed(format!("no redirect arrived within {} s", timeout.as_secs())).hint(
                "open the URL above in a browser on this machine, or use --paste and copy the code from the address bar",
            ));
        }
    };
    if let Some(error) = cb.error {
        return Err(CliError::failed(format!(
            "Login with Amazon answered {error}: {}",
            cb.error_description.unwrap_or_default()
        ))
        .hint("access_denied means the user did not allow access; run onboard again"));
    }
    if cb.state.as_deref() != Some(state) {
        return Err(CliError::failed("the redirect's state does not match this request's")
            .hint("the redirect came from another consent; run onboard again and use the URL it prints"));
    }
    cb.code.ok_or_else(|| CliError::failed("the redirect carried no code"))
}

/// The authorization-code grant: consent, code, exchange. Returns the refresh token.
async fn authorise(
    ctx: &Context,
    args: &OnboardArgs,
    region: Region,
    client_secret: &SecretString,
) -> CliResult<SecretString> {
    let scope = match (args.source, &args.scope) {
        (_, Some(scope)) => scope.clone(),
        (Source::Ads | Source::Amc, None) => ADS_SCOPE.to_owned(),
        (Source::Slate, None) => {
            return Err(CliError::usage("which LWA scope does your Slate application use?")
                .hint("pass --scope <scope> as Slate's API documentation gives it for your application"));
        }
        (Source::Sp, None) => {
            return Err(CliError::usage(
                "SP-API credentials take a refresh token, not a consent",
            ));
        }
    };
    let loopback = format!("http://localhost:{}/callback", args.port);
    let redirect_uri = args.redirect_uri.clone().unwrap_or_else(|| loopback.clone());
    let state = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let consent = ctx
        .env
        .get("AMZPIPE_LWA_CONSENT_URL")
        .unwrap_or_else(|| lwa::consent_endpoint(region).to_owned());
    let url = lwa::consent_url(&consent, &args.client_id, &scope, &redirect_uri, &state);
    let code = if let Some(code) = &args.code {
        code.clone()
    } else {
        let listener = if args.paste {
            None
        } else {
            let v4 = TcpListener::bind(("127.0.0.1", args.port)).await.map_err(|e| {
                CliError::usage(format!("cannot listen on localhost:{}: {e}", args.port))
                    .hint("pass --port <free port> (and allow its URL in the security profile), or use --paste")
            })?;
            // Browsers may resolve localhost to ::1 first.
            let v6 = TcpListener::bind(("::1", args.port)).await.ok();
            Some([Some(v4), v6].into_iter().flatten().collect::<Vec<_>>())
        };
        eprintln!("Authorization codes expire 5 minutes after consent and work once: finish promptly.");
        eprintln!("Open this URL in a browser signed in as the account owner, and allow access:\n\n  {url}\n");
        match listener {
            Some(listener) => {
                eprintln!("Waiting for the browser to come back to {redirect_uri} …");
                listen(listener, &state, Duration::from_secs(args.timeout)).await?
            }
            None => {
                let pasted = rpassword::prompt_password("Paste the code, or the whole URL the browser was sent to: ")
                    .map_err(|e| CliError::failed(format!("reading the code: {e}")))?;
                let (code, pasted_state) = parse_pasted(&pasted);
                if pasted_state.is_some_and(|s| s != state) {
                    return Err(CliError::failed("the pasted URL's state does not match this request's")
                        .hint("paste the URL of the consent this command printed"));
                }
                code
            }
        }
    };
    if code.is_empty() {
        return Err(CliError::usage("no authorization code given"));
    }
    let http = ctx.http()?;
    let endpoint = ctx.env.endpoints().lwa_for(region, args.source.token_host());
    let grant = LwaClient::new(http, endpoint)
        .exchange_code(&args.client_id, client_secret, &SecretString::from(code), &redirect_uri)
        .await
        .map_err(|e| match e {
            LwaError::InvalidGrant { description } => {
                CliError::failed(format!("Login with Amazon refused the authorization code ({description})")).hint(
                    "codes work once and expire 5 minutes after consent, and --redirect-uri must be the consent's: run onboard again and finish promptly",
                )
            }
            other => CliError::from(other).context("exchanging the authorization code"),
        })?;
    Ok(grant.refresh_token)
}

/// Runs the command.
pub async fn run(ctx: &Context, args: &OnboardArgs) -> CliResult<()> {
    let region = Region::from(args.region);
    if let Some(prefix) = ctx.secret_prefix().await
        && !args.secret.starts_with(&prefix)
    {
        eprintln!(
            "warning: the stack's functions read secrets under {prefix}; {} is outside it and they will not be able to read it",
            args.secret
        );
    }
    let client_secret = secret_input(ctx, "AMZPIPE_CLIENT_SECRET", "LWA client secret: ")?;
    let refresh_token = match args.source {
        Source::Sp => {
            if args.code.is_some() || args.paste {
                return Err(CliError::usage("SP-API credentials take a refresh token, not an authorization code")
                    .hint("authorise the app in Seller Central (Apps and Services → Develop Apps → Authorize) and set AMZPIPE_REFRESH_TOKEN to the refresh token it shows"));
            }
            let token = secret_input(
                ctx,
                "AMZPIPE_REFRESH_TOKEN",
                "Refresh token from Seller Central (Atzr|…): ",
            )?;
            if !token.expose_secret().starts_with("Atzr|") {
                return Err(
                    CliError::usage("that is not a refresh token: refresh tokens start with Atzr|")
                        .hint("copy the refresh token Seller Central shows after authorising the app"),
                );
            }
            token
        }
        _ => authorise(ctx, args, region, &client_secret).await?,
    };
    let value = SecretValue {
        client_id: args.client_id.clone(),
        client_secret: client_secret.expose_secret().to_owned(),
        refresh_token: refresh_token.expose_secret().to_owned(),
        region,
        token_url: None,
    };
    let created = ctx.secrets().await.put_credentials(&args.secret, &value).await?;
    let reaches = if args.no_verify {
        None
    } else {
        let clients = ctx.clients(&args.secret, args.source.token_host()).await?;
        Some(
            discover::list(&clients, args.source)
                .await
                .map_err(|e| e.context("the credentials were stored, but proving them failed"))?,
        )
    };
    if ctx.json {
        return print_json(&Onboarded {
            secret: args.secret.clone(),
            created,
            region: region.to_string(),
            reaches,
        });
    }
    println!(
        "{} secret {} ({} credentials, region {region})",
        if created { "created" } else { "stored a new version of" },
        args.secret,
        match args.source {
            Source::Ads => "Ads",
            Source::Amc => "AMC",
            Source::Sp => "SP-API",
            Source::Slate => "Slate",
        }
    );
    if let Some(listing) = &reaches {
        println!("They work; they reach:");
        discover::print_listing(listing);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_redirect_url_gives_its_code_and_state_and_a_bare_code_itself() {
        let (code, state) = parse_pasted("http://localhost:8765/callback?code=ANabc&scope=x&state=s1\n");
        assert_eq!((code.as_str(), state.as_deref()), ("ANabc", Some("s1")));
        let (code, state) = parse_pasted("  ANxyz ");
        assert_eq!((code.as_str(), state), ("ANxyz", None));
    }
}
