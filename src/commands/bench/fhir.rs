//! `vigil bench fhir`: how long a clinician takes to read a day of one patient's vitals through
//! FHIR (issue #8: 24 h at 1 Hz of five quantities, 432,000 Observations, under 1 s).
//!
//! A fresh data directory gets one patient, a bedside monitor assigned to them, their
//! observations committed through the store's group committer (sealed under the patient's key,
//! one audit leaf per batch) and a clinician on their care team. The hub then runs as its own
//! `vigil serve` process; the clinician signs in over HTTPS and reads every Observation of the
//! patient by following each searchset's `next` link, parsing every page and checking that
//! the count is right and no id repeats. Last, with the hub stopped, the store's page reads and
//! the searchset writing are timed in this process, to show where the hub's time goes.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use vigil_fhir::{Links, SearchsetWriter};
use vigil_hub::Hub;
use vigil_hub::access::users::create_user;
use vigil_model::phi::Phi;
use vigil_model::{
    Action, Actor, DeviceClass, DeviceId, Observation, Outcome, PatientId, Quantity, ResourceKind,
    Role, Timestamp, UserId,
};
use vigil_store::{Demographics, ObservationQuery};

use super::procfs;
use crate::cli::BenchFhirArgs;

/// What the monitor reports, in the order `--quantities` takes them, each with a resting value
/// in its canonical unit (beats/min, %, breaths/min, mm[Hg], Cel, %).
const VITALS: [(Quantity, f64); 9] = [
    (Quantity::HeartRate, 72.0),
    (Quantity::Spo2, 97.0),
    (Quantity::RespirationRate, 16.0),
    (Quantity::NibpSystolic, 121.0),
    (Quantity::NibpDiastolic, 78.0),
    (Quantity::PulseRate, 72.0),
    (Quantity::NibpMean, 92.0),
    (Quantity::BodyTemperature, 36.8),
    (Quantity::BatteryLevel, 80.0),
];

/// Observations committed at once: the group committer's largest batch.
const LOAD_BATCH: usize = 20_000;

/// Most observations the bench loads (the client keeps every id to check they are unique).
const MAX_OBSERVATIONS: u64 = 5_000_000;

/// The data the bench reads.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Reading instants of each quantity.
    instants: u64,
    hz: u32,
    quantities: usize,
    page: u32,
    overlap: bool,
}

impl Plan {
    fn from_args(args: &BenchFhirArgs) -> anyhow::Result<Plan> {
        if !(args.hours > 0.0 && args.hours <= 168.0) {
            bail!("--hours must be more than 0 and at most 168");
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let instants = (args.hours * 3600.0 * f64::from(args.hz)).round().max(1.0) as u64;
        let plan = Plan {
            instants,
            hz: args.hz,
            quantities: usize::from(args.quantities).min(VITALS.len()),
            page: args.page,
            overlap: !args.sequential,
        };
        if plan.observations() > MAX_OBSERVATIONS {
            bail!("at most {MAX_OBSERVATIONS} observations: lower --hours, --hz or --quantities");
        }
        Ok(plan)
    }

    fn observations(&self) -> u64 {
        self.instants * self.quantities as u64
    }

    /// The time of reading instant `i` after `start` (milliseconds).
    fn time(&self, start: i64, i: u64) -> i64 {
        #[allow(clippy::cast_possible_wrap)]
        let offset = (i * 1000 / u64::from(self.hz)) as i64;
        start + offset
    }
}

pub(crate) fn run(args: &BenchFhirArgs) -> anyhow::Result<()> {
    let plan = Plan::from_args(args)?;
    let dir = tempfile::tempdir().context("cannot create a data directory")?;
    let config = super::hub_process::bench_config(dir.path())?;
    let ready = provision(dir.path(), &config, &plan)?;

    let hub = super::hub_process::HubProcess::start(dir.path())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let runs = runtime.block_on(read_runs(&ready, &plan, hub.https, hub.pid(), args.runs));
    let peak_rss = procfs::peak_rss_kib(Some(hub.pid()));
    hub.stop()?;
    let runs = runs?;
    report(&plan, &runs, peak_rss);

    let hub = Hub::open(dir.path(), config)?;
    let inside = time_in_process(&hub, &ready.patient, &plan)?;
    inside.print(&runs, plan.overlap);
    Ok(())
}

/// What the client needs once the data directory is ready.
struct Ready {
    patient: PatientId,
    user: UserId,
    password: String,
    ca: reqwest::Certificate,
}

/// Initialises `dir` with the patient, their monitor, their observations and a clinician on
/// their care team.
fn provision(dir: &Path, config: &vigil_config::Config, plan: &Plan) -> anyhow::Result<Ready> {
    Hub::initialise(dir, config)?;
    let hub = Hub::open(dir, config.clone())?;
    let store = hub.store();
    let device = DeviceId::new("bench-monitor")?;
    let patient = PatientId::new("bench-patient")?;
    let user = UserId::new("bench.clinician")?;
    hub.registry()
        .register(Actor::System, device.clone(), DeviceClass::BedsideMonitor)?;
    // The readings end now, as a day just recorded would.
    let span = plan.time(0, plan.instants);
    let start = (Timestamp::now().unix_millis() - span).div_euclid(1000) * 1000;
    let start_time = Timestamp::from_unix_millis(start)?;
    store.add_patient(
        &patient,
        &Demographics {
            name: Phi::new("Bench Patient".to_owned()),
            mrn: Phi::new("BENCH-1".to_owned()),
            birth_date: Phi::new(time::macros::date!(1970 - 01 - 01)),
        },
        start_time,
    )?;
    store.assign_device(&device, &patient, start_time)?;
    let made = create_user(
        store.as_ref(),
        hub.registry().auditor(),
        Actor::System,
        user.clone(),
        Role::Clinician,
        None,
        None,
    )?;
    store.add_to_care_team(&user, &patient, Timestamp::now())?;
    hub.registry().auditor().record(&vigil_hub::audit::entry(
        Actor::System,
        Action::Update,
        ResourceKind::Patient,
        patient.as_str(),
        Outcome::Success,
        Some("care team: added bench.clinician"),
    ))?;

    println!(
        "loading {} observations ({} h at {} Hz of {} quantities) through the group committer…",
        plan.observations(),
        format_hours(plan),
        plan.hz,
        plan.quantities
    );
    let loading = Instant::now();
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    for i in 0..plan.instants {
        let time = Timestamp::from_unix_millis(plan.time(start, i))?;
        for (quantity, resting) in &VITALS[..plan.quantities] {
            batch.push(Observation {
                device: device.clone(),
                patient: Some(patient.clone()),
                quantity: *quantity,
                value: Phi::new(vary(*resting, i)),
                time,
                sequence: i,
                implausible: false,
            });
            if batch.len() == LOAD_BATCH {
                commit(store.as_ref(), &mut batch)?;
            }
        }
    }
    commit(store.as_ref(), &mut batch)?;
    let seconds = loading.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = plan.observations() as f64 / seconds;
    println!(
        "loaded in {seconds:.1} s ({rate:.0} obs/s; sealed, one audit leaf per batch of up to \
         {LOAD_BATCH}); not part of the measurement"
    );
    super::super::checkpoint(&hub);
    let ca = reqwest::Certificate::from_der(hub.registry().ca().cert_der())
        .context("the hospital CA certificate")?;
    Ok(Ready {
        patient,
        user,
        password: made.password,
        ca,
    })
}

/// A value near `resting` that changes from reading to reading (within ±2 %, one decimal),
/// so the page is not one value repeated.
fn vary(resting: f64, i: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let step = (i % 11) as f64 - 5.0;
    (resting * (1.0 + step * 0.004) * 10.0).round() / 10.0
}

fn commit(store: &dyn vigil_store::Store, batch: &mut Vec<Observation>) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let expected = batch.len();
    let receipt = store.commit_observations(std::mem::take(batch))?;
    if receipt.stored != expected {
        bail!("{} of {expected} observations were stored", receipt.stored);
    }
    batch.reserve(LOAD_BATCH);
    Ok(())
}

fn format_hours(plan: &Plan) -> String {
    #[allow(clippy::cast_precision_loss)]
    let hours = plan.instants as f64 / f64::from(plan.hz) / 3600.0;
    format!("{hours:.3}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_owned()
}

/// What one read of everything measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: Duration,
    pages: u64,
    bytes: u64,
    observations: u64,
    /// Time the client spent parsing pages.
    parsing: Duration,
    hub_cpu: f64,
    client_cpu: f64,
}

impl Run {
    fn per_second(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let n = self.observations as f64;
        n / self.wall.as_secs_f64()
    }
}

/// Signs the clinician in and reads everything `runs` times.
async fn read_runs(
    ready: &Ready,
    plan: &Plan,
    https: SocketAddr,
    hub: u32,
    runs: u32,
) -> anyhow::Result<Vec<Run>> {
    // The hub's certificate names localhost; resolve it to where the hub listens.
    let client = reqwest::Client::builder()
        .tls_certs_only([ready.ca.clone()])
        .resolve("localhost", https)
        .timeout(Duration::from_secs(300))
        .build()
        .context("cannot build the HTTPS client")?;
    let base = format!("https://localhost:{}", https.port());
    let token = sign_in(&client, &base, ready).await?;
    let first = format!(
        "{base}/fhir/r4/Observation?patient={}&_count={}",
        ready.patient, plan.page
    );
    let subject = format!("Patient/{}", ready.patient);
    println!(
        "reading with pages of {} over HTTPS; the client {}",
        plan.page,
        if plan.overlap {
            "asks for the next page while it parses this one"
        } else {
            "parses each page before asking for the next"
        }
    );
    let mut measured = Vec::new();
    for n in 1..=runs {
        let (hub_before, client_before) =
            (procfs::cpu_seconds(Some(hub)), procfs::cpu_seconds(None));
        let started = Instant::now();
        let mut run = read_all(&client, &token, &first, &subject, plan).await?;
        run.wall = started.elapsed();
        run.hub_cpu = procfs::cpu_seconds(Some(hub)) - hub_before;
        run.client_cpu = procfs::cpu_seconds(None) - client_before;
        println!(
            "run {n}: {:.3} s  {} pages  {:.1} MB  {} observations  {:.0} obs/s  hub CPU {:.2} s  \
             client CPU {:.2} s (parsing {:.3} s)",
            run.wall.as_secs_f64(),
            run.pages,
            megabytes(run.bytes),
            run.observations,
            run.per_second(),
            run.hub_cpu,
            run.client_cpu,
            run.parsing.as_secs_f64(),
        );
        measured.push(run);
    }
    Ok(measured)
}

#[derive(Deserialize)]
struct Session {
    token: String,
}

async fn sign_in(client: &reqwest::Client, base: &str, ready: &Ready) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"user": ready.user.as_str(), "password": ready.password}))
        .send()
        .await
        .context("cannot reach the hub to sign in")?;
    let status = response.status();
    if status != reqwest::StatusCode::CREATED {
        bail!("the clinician's sign-in was answered {status}");
    }
    Ok(response
        .json::<Session>()
        .await
        .context("the sign-in answer has no token")?
        .token)
}

/// Follows the searchset's `next` links from `first` to the end, parsing each page on a
/// blocking thread. With `plan.overlap`, the next page is asked for meanwhile, its link read
/// from the end of this one and checked against the parsed one.
async fn read_all(
    client: &reqwest::Client,
    token: &str,
    first: &str,
    subject: &str,
    plan: &Plan,
) -> anyhow::Result<Run> {
    let expected = plan.observations();
    // A hub that keeps offering a next page would otherwise keep the bench reading forever.
    let max_pages = expected.div_ceil(u64::from(plan.page)) + 1;
    let mut ids = HashSet::with_capacity(usize::try_from(expected).unwrap_or(0));
    let mut run = Run {
        wall: Duration::ZERO,
        pages: 0,
        bytes: 0,
        observations: 0,
        parsing: Duration::ZERO,
        hub_cpu: 0.0,
        client_cpu: 0.0,
    };
    let mut body = fetch(client, token, first, 1).await?;
    loop {
        run.pages += 1;
        run.bytes += body.len() as u64;
        let predicted = if plan.overlap {
            next_link_at_end(&body)
        } else {
            None
        };
        let subject = subject.to_owned();
        let parsing = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let page = read_page(&body, &subject, &mut ids);
            (page, ids, started.elapsed())
        });
        let prefetch = async {
            match &predicted {
                Some(url) if run.pages < max_pages => {
                    Some(fetch(client, token, url, run.pages + 1).await)
                }
                _ => None,
            }
        };
        let (parsed, fetched) = tokio::join!(parsing, prefetch);
        let (page, returned, took) = parsed.context("the parsing thread failed")?;
        ids = returned;
        let page = page.with_context(|| format!("page {}", run.pages))?;
        run.parsing += took;
        run.observations += page.entries;
        if plan.overlap && page.next != predicted {
            bail!(
                "page {}: the next link at its end is not the one parsed",
                run.pages
            );
        }
        body = match (page.next, fetched) {
            (None, _) => break,
            (Some(_), _) if run.pages >= max_pages => {
                bail!("the hub offered more than {max_pages} pages")
            }
            (Some(_), Some(fetched)) => fetched?,
            (Some(next), None) => fetch(client, token, &next, run.pages + 1).await?,
        };
    }
    if run.observations != expected {
        bail!(
            "read {} observations, expected {expected}",
            run.observations
        );
    }
    Ok(run)
}

/// One page's body.
async fn fetch(
    client: &reqwest::Client,
    token: &str,
    url: &str,
    number: u64,
) -> anyhow::Result<bytes::Bytes> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "application/fhir+json")
        .send()
        .await
        .context("cannot reach the hub")?;
    let status = response.status();
    if !status.is_success() {
        bail!("page {number} was answered {status}");
    }
    response
        .bytes()
        .await
        .with_context(|| format!("page {number} was cut short"))
}

/// The `next` link of a searchset, read from its end without parsing its entries: Vigil's hub
/// writes `link` last (vigil_fhir::bundle). `None` if it is not there; the full parse that
/// follows says whether it was right.
fn next_link_at_end(body: &[u8]) -> Option<String> {
    const MARKER: &[u8] = b",\"link\":[";
    let at = body.windows(MARKER.len()).rposition(|w| w == MARKER)?;
    let links = body.get(at + MARKER.len() - 1..)?;
    let links: Vec<Link<'_>> = serde_json::Deserializer::from_slice(links)
        .into_iter()
        .next()?
        .ok()?;
    links
        .into_iter()
        .find(|l| l.relation == "next")
        .map(|l| l.url.into_owned())
}

/// The parts of a searchset the client checks; serde skips the rest (it is still parsed).
#[derive(Deserialize)]
struct Bundle<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    entry: Vec<Entry<'a>>,
    #[serde(default, borrow)]
    link: Vec<Link<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    resource: Resource<'a>,
}

#[derive(Deserialize)]
struct Resource<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    subject: Reference<'a>,
}

#[derive(Deserialize)]
struct Reference<'a> {
    #[serde(borrow)]
    reference: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Link<'a> {
    #[serde(borrow)]
    relation: Cow<'a, str>,
    #[serde(borrow)]
    url: Cow<'a, str>,
}

#[derive(Debug)]
struct PageRead {
    entries: u64,
    next: Option<String>,
}

/// Parses one page: a searchset of Observations of `subject`, none seen before.
fn read_page(body: &[u8], subject: &str, ids: &mut HashSet<String>) -> anyhow::Result<PageRead> {
    let bundle: Bundle<'_> =
        serde_json::from_slice(body).context("the page is not a FHIR searchset Bundle")?;
    if bundle.resource_type != "Bundle" || bundle.kind != "searchset" {
        bail!("the page is not a searchset Bundle");
    }
    let entries = bundle.entry.len() as u64;
    for entry in bundle.entry {
        let resource = entry.resource;
        if resource.resource_type != "Observation" {
            bail!("an entry is not an Observation");
        }
        if resource.subject.reference != subject {
            bail!("an Observation is about another patient");
        }
        if !ids.insert(resource.id.into_owned()) {
            bail!("an Observation id was served twice");
        }
    }
    let next = bundle
        .link
        .into_iter()
        .find(|l| l.relation == "next")
        .map(|l| l.url.into_owned());
    Ok(PageRead { entries, next })
}

fn megabytes(bytes: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let bytes = bytes as f64;
    bytes / 1e6
}

/// The runs' best and median, and whether the target of issue #8 holds.
fn report(plan: &Plan, runs: &[Run], peak_rss_kib: u64) {
    let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    walls.sort_unstable();
    let (Some(best), Some(median)) = (walls.first(), walls.get(walls.len() / 2)) else {
        return;
    };
    let per_second = |wall: &Duration| {
        #[allow(clippy::cast_precision_loss)]
        let n = plan.observations() as f64;
        n / wall.as_secs_f64()
    };
    println!(
        "observations read     {} per run (expected {}), ids unique",
        plan.observations(),
        plan.observations()
    );
    println!(
        "best                  {:.3} s ({:.0} obs/s)",
        best.as_secs_f64(),
        per_second(best)
    );
    println!(
        "median                {:.3} s ({:.0} obs/s)",
        median.as_secs_f64(),
        per_second(median)
    );
    println!("hub peak memory (RSS) {} MiB", peak_rss_kib / 1024);
}

/// The hub's share of a read, timed in this process over the same data directory.
struct InProcess {
    /// The store's pages: SQLite query and AES-GCM opening of every value.
    store: Duration,
    /// Writing every page as a searchset Bundle.
    json: Duration,
    bytes: u64,
}

impl InProcess {
    fn print(&self, runs: &[Run], overlapping: bool) {
        let mut parsing: Vec<Duration> = runs.iter().map(|r| r.parsing).collect();
        parsing.sort_unstable();
        let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
        walls.sort_unstable();
        let median = |v: &[Duration]| v.get(v.len() / 2).copied().unwrap_or_default();
        let (wall, parsing) = (median(&walls), median(&parsing));
        let rest = wall.saturating_sub(self.store + self.json + parsing);
        println!("where the time goes (median run; store and JSON timed in-process afterwards):");
        println!(
            "  store pages (SQLite query, AES-GCM opening)  {:.3} s",
            self.store.as_secs_f64()
        );
        println!(
            "  searchset JSON writing ({:.1} MB)             {:.3} s",
            megabytes(self.bytes),
            self.json.as_secs_f64()
        );
        println!(
            "  client parsing (serde_json)                  {:.3} s",
            parsing.as_secs_f64()
        );
        if overlapping {
            // The hub reads the next page while the client parses this one: the parts overlap
            // in time, so the wall time is not their sum.
            println!(
                "  (the parts overlap: the hub reads the next page while the client parses this one)"
            );
        } else {
            println!(
                "  the rest: HTTP, TLS, copies, waits           {:.3} s",
                rest.as_secs_f64()
            );
        }
    }
}

/// Reads every page as the hub's Observation search does, timing the store and the JSON apart.
fn time_in_process(hub: &Hub, patient: &PatientId, plan: &Plan) -> anyhow::Result<InProcess> {
    let store = hub.store();
    let limit = usize::try_from(plan.page).unwrap_or(usize::MAX);
    // The hub's end of an open search: the last instant a Timestamp holds.
    let end = Timestamp::parse_rfc3339("9999-12-31T23:59:59.999Z")?;
    let mut measured = InProcess {
        store: Duration::ZERO,
        json: Duration::ZERO,
        bytes: 0,
    };
    let mut after = None;
    let mut rows_read = 0u64;
    loop {
        let started = Instant::now();
        let rows = store.observation_page(&ObservationQuery {
            patient: patient.clone(),
            quantities: Vec::new(),
            from: Timestamp::EPOCH,
            to: end,
            after,
            limit,
        })?;
        measured.store += started.elapsed();
        let started = Instant::now();
        let mut writer =
            SearchsetWriter::with_capacity("https://localhost/fhir/r4", rows.len() * 760 + 1024);
        for row in &rows {
            writer.push_observation(&row.id.to_string(), &row.observation)?;
        }
        let body = writer.finish(None, &Links::default());
        measured.json += started.elapsed();
        measured.bytes += body.len() as u64;
        rows_read += rows.len() as u64;
        match rows.last() {
            Some(last) if rows.len() == limit => after = Some((last.observation.time, last.id)),
            _ => break,
        }
    }
    if rows_read != plan.observations() {
        bail!(
            "the store holds {rows_read} observations, expected {}",
            plan.observations()
        );
    }
    Ok(measured)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn page(entries: &[(&str, &str)], next: Option<&str>) -> Vec<u8> {
        let mut writer = SearchsetWriter::new("https://localhost/fhir/r4");
        for (id, patient) in entries {
            let observation = Observation {
                device: DeviceId::new("mon-1").unwrap(),
                patient: Some(PatientId::new(*patient).unwrap()),
                quantity: Quantity::HeartRate,
                value: Phi::new(72.0),
                time: Timestamp::from_unix_millis(1_764_403_200_000).unwrap(),
                sequence: 1,
                implausible: false,
            };
            writer.push_observation(id, &observation).unwrap();
        }
        writer.finish(
            None,
            &Links {
                self_url: "https://localhost/fhir/r4/Observation?patient=p-1",
                next,
                previous: None,
            },
        )
    }

    #[test]
    fn a_page_is_counted_and_its_next_link_found_at_its_end() {
        let next = "https://localhost/fhir/r4/Observation?patient=p-1&_cursor=abc";
        let body = page(&[("1", "p-1"), ("2", "p-1")], Some(next));
        let mut ids = HashSet::new();
        let read = read_page(&body, "Patient/p-1", &mut ids).unwrap();
        assert_eq!(read.entries, 2);
        assert_eq!(read.next.as_deref(), Some(next));
        assert_eq!(next_link_at_end(&body).as_deref(), Some(next));
        let last = page(&[("3", "p-1")], None);
        assert_eq!(
            read_page(&last, "Patient/p-1", &mut ids).unwrap().next,
            None
        );
        assert_eq!(next_link_at_end(&last), None);
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn repeated_ids_other_patients_and_other_documents_are_refused() {
        let mut ids = HashSet::new();
        read_page(&page(&[("1", "p-1")], None), "Patient/p-1", &mut ids).unwrap();
        let again = read_page(&page(&[("1", "p-1")], None), "Patient/p-1", &mut ids);
        assert!(again.unwrap_err().to_string().contains("served twice"));
        let other = read_page(&page(&[("2", "p-2")], None), "Patient/p-1", &mut ids);
        assert!(other.unwrap_err().to_string().contains("another patient"));
        let history = br#"{"resourceType":"Bundle","type":"history","link":[]}"#;
        assert!(read_page(history, "Patient/p-1", &mut ids).is_err());
        assert!(read_page(b"{\"resourceType\":", "Patient/p-1", &mut ids).is_err());
        assert_eq!(next_link_at_end(b"{\"resourceType\":\"Bundle\"}"), None);
    }

    #[test]
    fn the_plan_counts_readings_and_refuses_what_it_cannot_hold() {
        let args = |hours: f64, hz: u32, quantities: u8| BenchFhirArgs {
            hours,
            hz,
            quantities,
            page: 10_000,
            runs: 1,
            sequential: false,
        };
        assert_eq!(
            Plan::from_args(&args(24.0, 1, 5)).unwrap().observations(),
            432_000
        );
        assert_eq!(
            Plan::from_args(&args(0.1, 2, 3)).unwrap().observations(),
            2_160
        );
        for bad in [
            args(0.0, 1, 5),
            args(f64::NAN, 1, 5),
            args(200.0, 1, 5),
            args(168.0, 100, 9),
        ] {
            assert!(Plan::from_args(&bad).is_err());
        }
        let plan = Plan::from_args(&args(1.0, 3, 1)).unwrap();
        assert_eq!(
            (plan.time(1000, 0), plan.time(1000, 1), plan.time(1000, 3)),
            (1000, 1333, 2000)
        );
    }
}
