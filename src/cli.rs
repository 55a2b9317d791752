//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Vigil: an end-to-end security platform for the Internet of Medical Things.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) log: LogArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Logging flags, which override the configuration file's `[log]` section.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// Least severe log level written: trace, debug, info, warn, error.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub(crate) log_level: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum)]
    pub(crate) log_format: Option<LogFormatArg>,
}

/// Log formats on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormatArg {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// The data directory, shared by every command that works on one.
#[derive(Debug, Args)]
pub(crate) struct DataDirArg {
    /// The hub's data directory (configuration, keys, database).
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "vigil-data")]
    pub(crate) data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a data directory with a commented default configuration.
    Init(DataDirArg),
    /// Work with the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the hub: the HTTPS device API (enrolment, renewal, revocation list).
    Serve(DataDirArg),
    /// Register, enrol, list and revoke devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Add and erase patients.
    #[command(subcommand)]
    Patient(PatientCommand),
    /// People who use Vigil: accounts, passwords, second factors.
    #[command(subcommand)]
    User(UserCommand),
    /// The security officer's detection rules file (docs/rules.md).
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Who cares for which patient (a clinician on the care team reads the patient's record).
    #[command(subcommand)]
    Careteam(CareteamCommand),
    /// Manage the key-encryption keys that protect patient data.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Verify and checkpoint the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Measure Vigil.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// See Vigil work: an embedded hub, a simulated ward streaming vitals over mutual TLS, a
    /// timeline of attacks, and a live summary. Ctrl-C ends it; the data directory verifies.
    Demo(DemoArgs),
    /// Score the alerts of a simulated run against its ground truth: recall, precision and
    /// detection latency per attack kind, false alerts per patient-day.
    Eval(EvalArgs),
    /// Drive a simulated fleet against a running hub (devices enrol, connect and publish; a
    /// scenario plays attacks; the ground truth is written as JSON lines).
    Sim(SimArgs),
    /// Print Vigil's clinical vocabulary: quantities with their MDC and LOINC codes, units and
    /// limits, or device classes with what they report, accept and the safety profiles.
    Codes(CodesArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the configuration (file and VIGIL_* environment) and print the values in force.
    Check(DataDirArg),
}

#[derive(Debug, Args)]
pub(crate) struct CodesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = CodesFormat::Table)]
    pub(crate) format: CodesFormat,
    /// Print device classes and safety profiles instead of quantities.
    #[arg(long)]
    pub(crate) devices: bool,
}

/// Output formats of `vigil codes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CodesFormat {
    /// Aligned columns for people.
    Table,
    /// JSON for programs.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
    /// Register a device and print its one-time enrolment token.
    Add {
        #[command(flatten)]
        data: DataDirArg,
        /// The device's id (letters, digits, - .; at most 64).
        #[arg(long)]
        id: String,
        /// The device's class (see `vigil codes --devices`).
        #[arg(long)]
        class: String,
    },
    /// Print a new enrolment token for a registered device (the previous one stops working).
    Token {
        #[command(flatten)]
        data: DataDirArg,
        /// The device's id.
        #[arg(long)]
        id: String,
    },
    /// Issue a certificate from a CSR file, for an air-gapped device.
    Issue {
        #[command(flatten)]
        data: DataDirArg,
        /// The device's id.
        #[arg(long)]
        id: String,
        /// The certificate signing request (PEM or DER).
        #[arg(long)]
        csr: PathBuf,
        /// Where to write the certificate chain (PEM).
        #[arg(long)]
        out: PathBuf,
    },
    /// Revoke a device and all its certificates; the running hub refuses them at once.
    Revoke {
        #[command(flatten)]
        data: DataDirArg,
        /// The device's id.
        #[arg(long)]
        id: String,
        /// Why: unspecified, key-compromise, affiliation-changed, superseded,
        /// cessation-of-operation, privilege-withdrawn.
        #[arg(long)]
        reason: String,
    },
    /// List devices with their status and current certificate.
    List(DataDirArg),
    /// Record that a device now serves a patient.
    Assign {
        #[command(flatten)]
        data: DataDirArg,
        /// The device's id.
        #[arg(long)]
        id: String,
        /// The patient's id.
        #[arg(long)]
        patient: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PatientCommand {
    /// Add a patient; name, MRN and birth date are sealed at rest.
    Add {
        #[command(flatten)]
        data: DataDirArg,
        /// Vigil's pseudonymous id for the patient (not the MRN).
        #[arg(long)]
        id: String,
        /// The patient's name.
        #[arg(long)]
        name: String,
        /// The hospital's medical record number.
        #[arg(long)]
        mrn: String,
        /// Date of birth, YYYY-MM-DD.
        #[arg(long)]
        birth_date: String,
    },
    /// Erase a patient: destroy their data key, so that their identifying data and vitals can
    /// never be read again (crypto-shredding). The audit log still verifies.
    Erase {
        #[command(flatten)]
        data: DataDirArg,
        /// The patient's id.
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add an account; prints its initial password once (and, for admin and security_officer,
    /// the second factor to scan into an authenticator app).
    Add {
        #[command(flatten)]
        data: DataDirArg,
        /// The user name (letters, digits, '.', '-', '_').
        #[arg(long)]
        name: String,
        /// admin, security_officer, clinical_engineer, clinician, patient or auditor.
        #[arg(long)]
        role: String,
        /// For the patient role: the patient this person is.
        #[arg(long)]
        patient: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List(DataDirArg),
    /// Disable an account (kept for the audit trail) and end its sessions.
    Disable {
        #[command(flatten)]
        data: DataDirArg,
        /// The user name.
        #[arg(long)]
        name: String,
    },
    /// Set a new password (generated, or from standard input), unlock the account and end its
    /// sessions.
    Password {
        #[command(flatten)]
        data: DataDirArg,
        /// The user name.
        #[arg(long)]
        name: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Enrol (or replace) the account's second factor and print it once.
    Totp {
        #[command(flatten)]
        data: DataDirArg,
        /// The user name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RulesCommand {
    /// Validate a rules file without touching a hub: every problem with its line and column.
    /// A running hub reloads `rules.toml` in its data directory within a second of a change.
    Check {
        /// The rules file.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CareteamCommand {
    /// Put a clinician on a patient's care team.
    Add {
        #[command(flatten)]
        data: DataDirArg,
        /// The clinician's user name.
        #[arg(long)]
        user: String,
        /// The patient's id.
        #[arg(long)]
        patient: String,
    },
    /// Take a clinician off a patient's care team.
    Remove {
        #[command(flatten)]
        data: DataDirArg,
        /// The clinician's user name.
        #[arg(long)]
        user: String,
        /// The patient's id.
        #[arg(long)]
        patient: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Add a new key-encryption key and re-wrap every patient's data key under it.
    Rotate(DataDirArg),
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Recompute the audit tree, check every checkpoint and every stored observation; exit
    /// non-zero and name each finding if anything was altered.
    Verify {
        #[command(flatten)]
        data: DataDirArg,
        /// The log's verifier key (default: audit.pub in the data directory; an auditor should
        /// use a copy kept elsewhere).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Sign a checkpoint of the audit log now.
    Checkpoint(DataDirArg),
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Ingest throughput and latency: an embedded hub in a fresh data directory, N simulated
    /// devices over MQTT 3.1.1 with mutual TLS at QoS 1, each with one message in flight.
    Ingest(BenchIngestArgs),
    /// Reading through FHIR: one patient's observations (by default 24 h at 1 Hz of five
    /// vitals, 432,000) read page by page over HTTPS by a signed-in clinician from a hub in its
    /// own process; wall time, bytes, observations/s and the hub's CPU time per run.
    Fhir(BenchFhirArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BenchFhirArgs {
    /// Hours of observations the patient has (up to 168).
    #[arg(long, default_value_t = 24.0)]
    pub(crate) hours: f64,
    /// Readings per second of each quantity (1 to 100).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) hz: u32,
    /// Quantities the bedside monitor reports (1 to 9): heart rate, SpO2, respiration rate,
    /// NIBP systolic and diastolic, then pulse rate, NIBP mean, temperature, battery.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub(crate) quantities: u8,
    /// Observations per page (FHIR `_count`, 1 to 10,000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) page: u32,
    /// Times to read everything (the best and the median are reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) runs: u32,
    /// Parse each page before asking for the next, instead of asking for the next (its link
    /// read from the end of this one) while parsing this one.
    #[arg(long)]
    pub(crate) sequential: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchIngestArgs {
    /// Simulated devices (each its own certificate, patient and connection).
    #[arg(long, default_value_t = 100)]
    pub(crate) devices: usize,
    /// How long to measure, in seconds.
    #[arg(long, default_value_t = 10)]
    pub(crate) seconds: u64,
    /// Readings per message (a monitor sends several vitals at once).
    #[arg(long, default_value_t = 10)]
    pub(crate) readings: usize,
    /// QoS 1 publications each device keeps unacknowledged (1 to 32).
    #[arg(long, default_value_t = 1)]
    pub(crate) in_flight: usize,
    /// Messages per second each device sends, on a schedule (open loop; latency counts from
    /// when a message was due). Without it, each device sends as fast as it is acknowledged.
    #[arg(long, value_name = "PER_SECOND")]
    pub(crate) rate: Option<f64>,
    /// Measure another MQTT server at HOST:PORT instead of an embedded hub (every connection
    /// uses the same certificate, with client ids bench-00000, bench-00001, …).
    #[arg(long, value_name = "HOST:PORT", requires_all = ["ca", "cert", "key"])]
    pub(crate) server: Option<String>,
    /// Also print, for each second of the run, the messages due in it that were acknowledged,
    /// and their p99 and maximum time to PUBACK (to see when a tail happens).
    #[arg(long)]
    pub(crate) timeline: bool,
    /// CA certificate (PEM) that signed the server's certificate (with --server).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// Client certificate chain (PEM) (with --server).
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: Option<PathBuf>,
    /// Client private key (PEM) (with --server).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The data directory: created if new, reused (with a new ward) if it exists.
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "vigil-demo")]
    pub(crate) data_dir: PathBuf,
    /// Simulated patients in the ward.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(3..=500))]
    pub(crate) patients: u16,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<u32>,
    /// The seed of the simulation: the same seed plays the same ward, vitals and attacks.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Print the summary as plain lines every 5 s instead of redrawing it.
    #[arg(long)]
    pub(crate) headless: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// The hub's data directory, where the simulated patients and devices are registered (as
    /// `vigil patient add` and `vigil device add` would).
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "vigil-data")]
    pub(crate) data_dir: PathBuf,
    /// The hub's HTTPS address, HOST:PORT (enrolment).
    #[arg(long, value_name = "HOST:PORT", default_value = "localhost:8443")]
    pub(crate) hub: String,
    /// The hub's MQTT address, HOST:PORT (default: the hub's host, port 8883).
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) mqtt: Option<String>,
    /// Simulated patients.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=5000))]
    pub(crate) patients: u16,
    /// How long to run, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub(crate) duration: u32,
    /// The seed of the simulation.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Attack scenario, JSON lines (see docs/simulator.md); none by default.
    #[arg(long, value_name = "FILE", conflicts_with = "attack_rounds")]
    pub(crate) scenario: Option<PathBuf>,
    /// Instead of a scenario file: this many rounds of every attack (the demo's timeline),
    /// spread over the run, each round on other patients.
    #[arg(long, value_name = "N")]
    pub(crate) attack_rounds: Option<u16>,
    /// Clinical events (tachycardia, desaturation, hypotension, hypoglycaemia, atrial
    /// fibrillation, fever) per patient per day, drawn from the seed.
    #[arg(long, value_name = "RATE", default_value_t = 1.0)]
    pub(crate) clinical_events_per_day: f64,
    /// Where to write the ground truth (JSON lines).
    #[arg(long, value_name = "FILE", default_value = "ground-truth.jsonl")]
    pub(crate) truth: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The hub's data directory, whose alerts are scored.
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "vigil-data")]
    pub(crate) data_dir: PathBuf,
    /// The run's ground truth (JSON lines from `vigil sim` or `vigil demo`).
    #[arg(long, value_name = "FILE")]
    pub(crate) truth: PathBuf,
    /// Seconds after an attack's end within which an alert still counts as detecting it.
    #[arg(long, default_value_t = 10)]
    pub(crate) grace: u32,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}
