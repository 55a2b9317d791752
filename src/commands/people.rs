//! `vigil user …` and `vigil careteam …`: accounts and care teams, from the hub's own machine.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};
use vigil_hub::access::users::{create_user, enrol_totp, reset_password};
use vigil_model::{Action, Outcome, PatientId, ResourceKind, Role, Timestamp, UserId};

use super::{actor, checkpoint, open_hub};
use crate::cli::{CareteamCommand, LogArgs, UserCommand};

/// Reads one password line from standard input (a script's pipe, never echoed).
fn password_from_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .take(1024)
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    let line = text.lines().next().unwrap_or("").to_owned();
    if line.is_empty() {
        bail!("no password on standard input");
    }
    Ok(line)
}

fn show_totp(secret: &vigil_auth::totp::TotpSecret, user: &UserId) {
    println!("Second factor (scan into an authenticator app, or type the key):");
    println!("  {}", secret.otpauth_uri("Vigil", user.as_str()));
    println!("  key: {}", secret.to_base32());
}

pub(crate) fn user(log: &LogArgs, command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add {
            data,
            name,
            role,
            patient,
            password_stdin,
        } => {
            let id = UserId::new(name).context("--name")?;
            let role: Role = role.parse().context("--role")?;
            let patient = patient
                .map(PatientId::new)
                .transpose()
                .context("--patient")?;
            let password = password_stdin.then(password_from_stdin).transpose()?;
            let generated = password.is_none();
            let hub = open_hub(log, &data.data_dir)?;
            let made = create_user(
                hub.store().as_ref(),
                hub.registry().auditor(),
                actor(),
                id,
                role,
                patient.as_ref(),
                password,
            )?;
            checkpoint(&hub);
            println!("Added {} ({role}).", made.user);
            if generated {
                println!("Initial password (shown once): {}", made.password);
            }
            if let Some(secret) = &made.totp {
                show_totp(secret, &made.user);
            }
        }
        UserCommand::List(data) => {
            let hub = open_hub(log, &data.data_dir)?;
            let users = hub.store().users()?;
            println!("{:<32} {:<18} {:<10} created", "user", "role", "state");
            for u in users {
                let state = if u.disabled_at.is_some() {
                    "disabled"
                } else {
                    "enabled"
                };
                println!(
                    "{:<32} {:<18} {:<10} {}",
                    u.id.as_str(),
                    u.role.as_str(),
                    state,
                    u.created_at
                );
            }
        }
        UserCommand::Disable { data, name } => {
            let id = UserId::new(name).context("--name")?;
            let hub = open_hub(log, &data.data_dir)?;
            let now = Timestamp::now();
            hub.store().disable_user(&id, now)?;
            let ended = hub.store().revoke_sessions_of(&id, now)?;
            hub.registry().auditor().record(&vigil_hub::audit::entry(
                actor(),
                Action::Update,
                ResourceKind::User,
                id.as_str(),
                Outcome::Success,
                Some("account disabled"),
            ))?;
            checkpoint(&hub);
            println!("Disabled {id}; {ended} session(s) ended.");
        }
        UserCommand::Password {
            data,
            name,
            password_stdin,
        } => {
            let id = UserId::new(name).context("--name")?;
            let password = password_stdin.then(password_from_stdin).transpose()?;
            let generated = password.is_none();
            let hub = open_hub(log, &data.data_dir)?;
            let password = reset_password(
                hub.store().as_ref(),
                hub.registry().auditor(),
                actor(),
                &id,
                password,
            )?;
            checkpoint(&hub);
            println!("New password set for {id}; the account is unlocked and its sessions ended.");
            if generated {
                println!("Password (shown once): {password}");
            }
        }
        UserCommand::Totp { data, name } => {
            let id = UserId::new(name).context("--name")?;
            let hub = open_hub(log, &data.data_dir)?;
            let secret = enrol_totp(hub.store().as_ref(), hub.registry().auditor(), actor(), &id)?;
            checkpoint(&hub);
            show_totp(&secret, &id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn careteam(log: &LogArgs, command: CareteamCommand) -> anyhow::Result<ExitCode> {
    let (data, user, patient, adding) = match command {
        CareteamCommand::Add {
            data,
            user,
            patient,
        } => (data, user, patient, true),
        CareteamCommand::Remove {
            data,
            user,
            patient,
        } => (data, user, patient, false),
    };
    let user = UserId::new(user).context("--user")?;
    let patient = PatientId::new(patient).context("--patient")?;
    let hub = open_hub(log, &data.data_dir)?;
    let store = hub.store();
    match store.user(&user)? {
        Some(record) if record.role == Role::Clinician => {}
        Some(_) => bail!("{user} is not a clinician"),
        None => bail!("user {user} is not known"),
    }
    let now = Timestamp::now();
    let changed = if adding {
        store.add_to_care_team(&user, &patient, now)?
    } else {
        store.remove_from_care_team(&user, &patient, now)?
    };
    if changed {
        hub.registry().auditor().record(&vigil_hub::audit::entry(
            actor(),
            Action::Update,
            ResourceKind::Patient,
            patient.as_str(),
            Outcome::Success,
            Some(&format!(
                "care team: {} {}",
                if adding { "added" } else { "removed" },
                user.as_str()
            )),
        ))?;
        checkpoint(&hub);
    }
    match (adding, changed) {
        (true, true) => println!("{user} is now on the care team of {patient}."),
        (true, false) => println!("{user} was already on the care team of {patient}."),
        (false, true) => println!("{user} is no longer on the care team of {patient}."),
        (false, false) => println!("{user} was not on the care team of {patient}."),
    }
    Ok(ExitCode::SUCCESS)
}
