//! `discover`: what a credential set reaches — Ads profiles, AMC accounts and instances, SP-API
//! marketplaces, Slate accounts down to datasets — and, on request, job definitions for the ones
//! selected, ready to schedule. `onboard` shows the same listing to prove new credentials work.

use std::path::{Path, PathBuf};

use amzpipe::adapters::amc::{AmcAccount, AmcInstance};
use amzpipe::adapters::sellers::MarketplaceParticipation;
use amzpipe::domain::credentials::TokenHost;
use amzpipe::domain::job::Job;
use amzpipe::steps::Clients;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::{Value, json};

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{identifier, print_json, table};

/// An Amazon source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// Amazon Ads (reporting v3).
    Ads,
    /// Amazon Marketing Cloud.
    Amc,
    /// Selling Partner API (Reports).
    Sp,
    /// Prime Video Slate.
    Slate,
}

impl Source {
    /// Where this source's credentials get their access tokens by default (SP-API: `api.amazon.com`
    /// everywhere; the Ads family: the region's host).
    pub fn token_host(self) -> TokenHost {
        match self {
            Self::Sp => TokenHost::Global,
            Self::Ads | Self::Amc | Self::Slate => TokenHost::Regional,
        }
    }
}

/// What to discover.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Which source.
    #[arg(value_enum)]
    pub source: Source,
    /// The Secrets Manager secret holding the credential set.
    #[arg(long, value_name = "SECRET")]
    pub credentials: String,
    /// Write a job definition for each one selected into this directory.
    #[arg(long, value_name = "DIR")]
    pub write_jobs: Option<PathBuf>,
    /// With --write-jobs: only these (profile, instance, marketplace or dataset ids; repeat the flag).
    /// All of them when absent.
    #[arg(long, value_name = "ID", requires = "write_jobs")]
    pub select: Vec<String>,
    /// With --write-jobs: the report to ask for (Ads `reportTypeId`, default spCampaigns; SP-API
    /// `reportType`, default GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL).
    #[arg(long, requires = "write_jobs")]
    pub report: Option<String>,
    /// With --write-jobs for AMC: the saved workflow the jobs run (see `amc workflows sync`).
    #[arg(long, requires = "write_jobs")]
    pub workflow: Option<String>,
    /// With --write-jobs: replace job files that exist.
    #[arg(long, requires = "write_jobs")]
    pub force: bool,
}

/// An AMC account with its instances.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmcAccountInstances {
    /// The account.
    #[serde(flatten)]
    pub account: AmcAccount,
    /// Its instances.
    pub instances: Vec<AmcInstance>,
}

/// One Slate dataset with where it sits.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlateDataset {
    /// Account id and name.
    pub account_id: String,
    #[allow(missing_docs)]
    pub account_name: String,
    /// Group id and name.
    pub group_id: String,
    #[allow(missing_docs)]
    pub group_name: String,
    /// Business id and name.
    pub business_id: String,
    #[allow(missing_docs)]
    pub business_name: String,
    /// Dataset id and name.
    pub dataset_id: String,
    #[allow(missing_docs)]
    pub dataset_name: String,
}

/// What a credential set reaches in one source.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase", tag = "source", content = "items")]
pub enum Listing {
    /// Ads profiles.
    Ads(Vec<amzpipe::adapters::ads_reports::Profile>),
    /// AMC accounts and instances.
    Amc(Vec<AmcAccountInstances>),
    /// SP-API marketplaces.
    Sp(Vec<MarketplaceParticipation>),
    /// Slate datasets.
    Slate(Vec<SlateDataset>),
}

/// Lists what `clients` reach in `source`.
pub async fn list(clients: &Clients, source: Source) -> CliResult<Listing> {
    Ok(match source {
        Source::Ads => Listing::Ads(
            clients
                .ads()
                .profiles()
                .await
                .map_err(|e| CliError::from(e).context("listing Ads profiles"))?,
        ),
        Source::Amc => {
            let amc = clients.amc();
            let accounts = amc
                .accounts()
                .await
                .map_err(|e| CliError::from(e).context("listing AMC accounts"))?;
            let mut out = Vec::new();
            for account in accounts {
                let instances = amc
                    .instances(&account.account_id, &account.marketplace_id)
                    .await
                    .map_err(|e| {
                        CliError::from(e)
                            .context(format!("listing the instances of AMC account {}", account.account_id))
                    })?;
                out.push(AmcAccountInstances { account, instances });
            }
            Listing::Amc(out)
        }
        Source::Sp => Listing::Sp(
            clients
                .sellers()
                .marketplace_participations()
                .await
                .map_err(|e| CliError::from(e).context("listing SP-API marketplaces"))?,
        ),
        Source::Slate => {
            let slate = clients.slate();
            let failed = |e| CliError::from(e).context("listing Slate datasets");
            let mut out = Vec::new();
            for account in slate.accounts().await.map_err(failed)? {
                for group in slate.groups(&account.id).await.map_err(failed)? {
                    for business in slate.businesses(&account.id, &group.id).await.map_err(failed)? {
                        for dataset in slate
                            .datasets(&account.id, &group.id, &business.id)
                            .await
                            .map_err(failed)?
                        {
                            out.push(SlateDataset {
                                account_id: account.id.clone(),
                                account_name: account.name.clone(),
                                group_id: group.id.clone(),
                                group_name: group.name.clone(),
                                business_id: business.id.clone(),
                                business_name: business.name.clone(),
                                dataset_id: dataset.id,
                                dataset_name: dataset.name,
                            });
                        }
                    }
                }
            }
            Listing::Slate(out)
        }
    })
}

/// Prints a listing as a table.
pub fn print_listing(listing: &Listing) {
    let t = match listing {
        Listing::Ads(profiles) => {
            let mut t = table(&[
                "PROFILE ID",
                "COUNTRY",
                "CURRENCY",
                "TIME ZONE",
                "ACCOUNT TYPE",
                "ACCOUNT NAME",
            ]);
            for p in profiles {
                t.add_row(vec![
                    p.profile_id.to_string(),
                    p.country_code.clone(),
                    p.currency_code.clone(),
                    p.timezone.clone(),
                    p.account_info.kind.clone(),
                    p.account_info.name.clone(),
                ]);
            }
            t
        }
        Listing::Amc(accounts) => {
            let mut t = table(&[
                "ACCOUNT ID",
                "ACCOUNT NAME",
                "MARKETPLACE",
                "INSTANCE ID",
                "INSTANCE NAME",
                "TYPE",
                "STATUS",
            ]);
            for a in accounts {
                if a.instances.is_empty() {
                    t.add_row(vec![
                        a.account.account_id.clone(),
                        a.account.account_name.clone(),
                        a.account.marketplace_id.clone(),
                    ]);
                }
                for i in &a.instances {
                    t.add_row(vec![
                        a.account.account_id.clone(),
                        a.account.account_name.clone(),
                        a.account.marketplace_id.clone(),
                        i.instance_id.clone(),
                        i.instance_name.clone(),
                        i.instance_type.clone(),
                        i.creation_status.clone(),
                    ]);
                }
            }
            t
        }
        Listing::Sp(marketplaces) => {
            let mut t = table(&[
                "MARKETPLACE ID",
                "COUNTRY",
                "NAME",
                "CURRENCY",
                "DOMAIN",
                "PARTICIPATING",
            ]);
            for m in marketplaces {
                t.add_row(vec![
                    m.marketplace.id.clone(),
                    m.marketplace.country_code.clone(),
                    m.marketplace.name.clone(),
                    m.marketplace.default_currency_code.clone(),
                    m.marketplace.domain_name.clone(),
                    if m.participation.is_participating { "yes" } else { "no" }.to_owned(),
                ]);
            }
            t
        }
        Listing::Slate(datasets) => {
            let mut t = table(&["ACCOUNT", "GROUP", "BUSINESS", "DATASET", "DATASET NAME"]);
            for d in datasets {
                t.add_row(vec![
                    format!("{} ({})", d.account_id, d.account_name),
                    format!("{} ({})", d.group_id, d.group_name),
                    format!("{} ({})", d.business_id, d.business_name),
                    d.dataset_id.clone(),
                    d.dataset_name.clone(),
                ]);
            }
            t
        }
    };
    println!("{t}");
}

/// A candidate job: the id it is selected by, and its definition.
struct Candidate {
    id: String,
    job: Value,
}

fn job_name(parts: &[&str]) -> String {
    let lower: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    identifier(&lower, amzpipe::domain::job::MAX_NAME_LEN)
        .trim_matches('-')
        .to_owned()
}

fn candidates(listing: &Listing, args: &DiscoverArgs) -> CliResult<Vec<Candidate>> {
    let credentials = &args.credentials;
    Ok(match listing {
        Listing::Ads(profiles) => {
            let report = args.report.clone().unwrap_or_else(|| "spCampaigns".into());
            profiles
                .iter()
                .map(|p| {
                    let id = p.profile_id.to_string();
                    Candidate {
                        job: json!({
                            "name": job_name(&["ads", &p.country_code, &id, &report]),
                            "credentials": credentials,
                            "source": {
                                "type": "adsReports", "profileId": id, "adProduct": "SPONSORED_PRODUCTS",
                                "reportTypeId": report,
                                "columns": ["date", "campaignId", "campaignName", "impressions", "clicks", "cost", "purchases7d", "sales7d"],
                                "groupBy": ["campaign"], "timeUnit": "DAILY",
                            },
                            "window": {"rule": "yesterday", "lookbackDays": 3},
                        }),
                        id,
                    }
                })
                .collect()
        }
        Listing::Amc(accounts) => {
            let Some(workflow) = &args.workflow else {
                return Err(CliError::usage("AMC jobs run a saved workflow: which one?")
                    .hint("pass --workflow <workflow id> (create it with `amzpipectl amc workflows sync`)"));
            };
            accounts
                .iter()
                .flat_map(|a| a.instances.iter().map(move |i| (a, i)))
                .map(|(a, i)| Candidate {
                    id: i.instance_id.clone(),
                    job: json!({
                        "name": job_name(&["amc", &i.instance_id, workflow]),
                        "credentials": credentials,
                        "source": {
                            "type": "amc", "instanceId": i.instance_id, "advertiserId": a.account.account_id,
                            "marketplaceId": a.account.marketplace_id, "query": {"workflowId": workflow},
                        },
                        "window": {"rule": "lastDays", "days": 7},
                    }),
                })
                .collect()
        }
        Listing::Sp(marketplaces) => {
            let report = args
                .report
                .clone()
                .unwrap_or_else(|| "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL".into());
            marketplaces
                .iter()
                .filter(|m| m.participation.is_participating)
                .map(|m| Candidate {
                    id: m.marketplace.id.clone(),
                    job: json!({
                        "name": job_name(&["sp", &m.marketplace.country_code, &short_report(&report)]),
                        "credentials": credentials,
                        "source": {"type": "spReports", "reportType": report, "marketplaceIds": [m.marketplace.id]},
                        "window": {"rule": "yesterday", "lookbackDays": 2},
                    }),
                })
                .collect()
        }
        Listing::Slate(datasets) => datasets
            .iter()
            .map(|d| Candidate {
                id: d.dataset_id.clone(),
                job: json!({
                    "name": job_name(&["slate", &d.account_id, &d.business_id, &d.dataset_id]),
                    "credentials": credentials,
                    "source": {"type": "slate", "accountId": d.account_id, "groupId": d.group_id,
                               "businessId": d.business_id, "datasetId": d.dataset_id},
                    "window": {"rule": "yesterday"},
                }),
            })
            .collect(),
    })
}

/// `GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL` → `flat-file-all-orders-data-by-order-date-general`.
fn short_report(report: &str) -> String {
    report.strip_prefix("GET_").unwrap_or(report).replace('_', "-")
}

/// Writes the job files of the selected candidates; returns the paths written.
fn write_jobs(listing: &Listing, args: &DiscoverArgs, dir: &Path) -> CliResult<Vec<PathBuf>> {
    let all = candidates(listing, args)?;
    for wanted in &args.select {
        if !all.iter().any(|c| &c.id == wanted) {
            let known: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
            return Err(CliError::usage(format!(
                "unknown id {wanted:?}: these credentials reach {}",
                known.join(", ")
            ))
            .hint("pick from the ids listed without --write-jobs"));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| CliError::failed(format!("cannot create {}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for candidate in all
        .into_iter()
        .filter(|c| args.select.is_empty() || args.select.contains(&c.id))
    {
        let job = Job::from_value(candidate.job.clone())?;
        let path = dir.join(format!("{}.json", job.name));
        if path.exists() && !args.force {
            return Err(CliError::usage(format!("{} exists", path.display())).hint("pass --force to replace it"));
        }
        let text = serde_json::to_string_pretty(&candidate.job).map_err(|e| CliError::failed(e.to_string()))?;
        std::fs::write(&path, text + "\n")
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

/// Runs the command.
pub async fn run(ctx: &Context, args: &DiscoverArgs) -> CliResult<()> {
    let clients = ctx.clients(&args.credentials, args.source.token_host()).await?;
    let listing = list(&clients, args.source).await?;
    let written = match &args.write_jobs {
        Some(dir) => write_jobs(&listing, args, dir)?,
        None => Vec::new(),
    };
    if ctx.json {
        let mut value = serde_json::to_value(&listing).map_err(|e| CliError::failed(e.to_string()))?;
        if args.write_jobs.is_some() {
            value["jobsWritten"] = json!(written);
        }
        return print_json(&value);
    }
    print_listing(&listing);
    for path in &written {
        println!("wrote {}", path.display());
    }
    if !written.is_empty() {
        println!(
            "Run one now with `amzpipectl run --job <file>`, or put them in a schedule's input (infra/template.yaml)."
        );
    }
    Ok(())
}
