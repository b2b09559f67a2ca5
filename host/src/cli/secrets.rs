//! `quarry secrets`: manage the key that seals stored credentials.
//!
//! `rotate-key` reads the same configuration as `quarry serve` (the data folder from
//! `QUARRY_DATA_DIR` / `quarry.toml`, the store from `QUARRY_METADATA_URL`, the key from
//! `QUARRY_SECRET_KEY` or `<data_dir>/secret.key`), makes a new key and re-seals every stored
//! credential in one transaction (see [`crate::secrets::rotate`]). Stop every server first: one
//! still running keeps sealing with the old key.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::PipelineSettings;
use crate::secrets::rotate::rotate_key;
use crate::secrets::{Cipher, KeySource, SECRET_KEY_VAR};
use crate::store::Store;

/// What to do with the secret key.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Make a new key and re-seal every stored credential with it, in one transaction. Stop all
    /// servers first. With a key file, the file is replaced atomically; with QUARRY_SECRET_KEY,
    /// the new key is printed once: put it in the environment before starting Quarry again.
    RotateKey,
}

/// Run a `secrets` command.
pub async fn run(cmd: SecretsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretsCommand::RotateKey => rotate().await,
    }
}

async fn rotate() -> anyhow::Result<ExitCode> {
    let settings = PipelineSettings::load()?;
    let current = Cipher::from_env(&settings.data_dir)?;
    let store = Store::from_env(&settings.data_dir).await?;
    eprintln!("Rotating the secret key {} (stop every running Quarry server first)…", current.key_id());
    let rotation = rotate_key(&store, &current, |new| {
        // Printed before the commit: if this fails, nothing is re-sealed.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{SECRET_KEY_VAR}={}", new.key_base64())?;
        out.flush()
    })
    .await;
    store.close().await;
    let rotation = match rotation {
        Ok(rotation) => rotation,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let counts = rotation.counts;
    eprintln!(
        "Re-sealed {} connection config(s) and {} provider API key(s); the new key id is {}.",
        counts.connections,
        counts.provider_keys,
        rotation.new.key_id()
    );
    match rotation.new.source() {
        KeySource::File(path) => eprintln!("The key file {} now holds the new key.", path.display()),
        _ => eprintln!(
            "The old key no longer opens anything: set {SECRET_KEY_VAR} to the value printed above (shown once) \
             before starting Quarry."
        ),
    }
    Ok(ExitCode::SUCCESS)
}
