//! Key-encryption keys (KEKs), kept outside the database.
//!
//! [`KeyEncryptionKeys`] is what sealing needs: wrap a data key under the active KEK, unwrap it
//! under whichever KEK wrapped it. [`Keyring`] implements it from a file in the data directory
//! (`keyring.json`, mode 0600) or from the `VIGIL_KEYRING` environment variable (same JSON), so
//! that the database and its keys can be kept on different media. An external KMS implements
//! the same trait.
//!
//! File format: `{"version": 1, "active": 2, "keys": {"1": "<base64 32 bytes>", "2": "…"}}`.

use std::collections::BTreeMap;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{SealError, new_key_material, open_with, seal_with};

/// The keyring file's name in the data directory.
pub const KEYRING_FILE: &str = "keyring.json";
/// The environment variable that may hold the keyring instead of the file.
pub const KEYRING_ENV: &str = "VIGIL_KEYRING";
/// Largest keyring accepted, in bytes (thousands of keys).
const MAX_KEYRING_BYTES: u64 = 1024 * 1024;

/// A data key wrapped by a KEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The KEK that wrapped it.
    pub kek_id: u32,
    /// The sealed data key.
    pub blob: Vec<u8>,
}

/// Wraps and unwraps patients' data keys.
pub trait KeyEncryptionKeys: Send + Sync {
    /// The id of the KEK new wraps use.
    fn active_id(&self) -> u32;
    /// Wraps `data_key` under the active KEK, bound to `context` (the patient).
    fn wrap(&self, data_key: &[u8; 32], context: &[u8]) -> Result<WrappedKey, SealError>;
    /// Unwraps a data key bound to `context`.
    fn unwrap_key(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<Vec<u8>, SealError>;
}

/// Why the keyring could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The keyring is not valid (it never echoes key material).
    #[error("keyring is malformed: {0}")]
    Malformed(&'static str),
    /// The keyring file is readable by others.
    #[error("{0} must be readable by its owner only (chmod 600)")]
    Permissions(std::path::PathBuf),
    /// The keyring comes from the environment and cannot be changed here.
    #[error("the keyring comes from {KEYRING_ENV}; rotate it where it is kept")]
    ReadOnly,
    /// Random generation failed.
    #[error(transparent)]
    Seal(#[from] SealError),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    version: u32,
    active: u32,
    keys: BTreeMap<u32, String>,
}

/// KEKs from a file or the environment.
///
/// A keyring loaded from a file follows it: when another process rotates the file (`vigil keys
/// rotate` while the hub runs), the next wrap uses the new active key and the next unwrap under
/// a key this process has not seen reloads the file.
pub struct Keyring {
    keys: BTreeMap<u32, LessSafeKey>,
    material: BTreeMap<u32, [u8; 32]>,
    active: u32,
    from_env: bool,
    file: Option<std::path::PathBuf>,
}

/// A keyring that can be shared and reloads itself from its file when that changed.
pub struct SharedKeyring {
    current: std::sync::RwLock<(Keyring, Option<std::time::SystemTime>)>,
}

impl std::fmt::Debug for SharedKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedKeyring")
    }
}

fn modified(keyring: &Keyring) -> Option<std::time::SystemTime> {
    keyring
        .file
        .as_ref()
        .and_then(|path| std::fs::metadata(path).ok())
        .and_then(|m| m.modified().ok())
}

impl SharedKeyring {
    /// Shares `keyring`.
    pub fn new(keyring: Keyring) -> SharedKeyring {
        let stamp = modified(&keyring);
        SharedKeyring {
            current: std::sync::RwLock::new((keyring, stamp)),
        }
    }

    /// Reloads from the file if it changed since it was read; keeps the current keys if the
    /// file cannot be read (the error surfaces when a key is actually missing).
    fn refresh(&self) {
        let (path, stamp) = {
            let guard = self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &guard.0.file {
                Some(path) => (path.clone(), guard.1),
                None => return,
            }
        };
        let now = std::fs::metadata(&path)
            .ok()
            .and_then(|m| m.modified().ok());
        if now == stamp {
            return;
        }
        let Some(dir) = path.parent() else { return };
        if let Ok(reloaded) = Keyring::load(dir, None) {
            let mut guard = self
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *guard = (reloaded, now);
        }
    }
}

impl KeyEncryptionKeys for SharedKeyring {
    fn active_id(&self) -> u32 {
        self.refresh();
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .active_id()
    }

    fn wrap(&self, data_key: &[u8; 32], context: &[u8]) -> Result<WrappedKey, SealError> {
        self.refresh();
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .wrap(data_key, context)
    }

    fn unwrap_key(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let first = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .unwrap_key(wrapped, context);
        match first {
            Err(SealError::UnknownKek(_)) => {
                self.refresh();
                self.current
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0
                    .unwrap_key(wrapped, context)
            }
            other => other,
        }
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Creates a keyring file with one fresh KEK; refuses to overwrite one.
    pub fn create(data_dir: &Path) -> Result<Keyring, KeyringError> {
        let mut material = BTreeMap::new();
        material.insert(1, new_key_material()?);
        let keyring = Self::from_material(material, 1, false)?;
        keyring.write(&data_dir.join(KEYRING_FILE), true)?;
        Ok(keyring)
    }

    /// Loads the keyring: from `VIGIL_KEYRING` if `env_value` is given, else from the file.
    pub fn load(data_dir: &Path, env_value: Option<&str>) -> Result<Keyring, KeyringError> {
        if let Some(text) = env_value {
            return Self::parse(text, true);
        }
        let path = data_dir.join(KEYRING_FILE);
        let file_error = |source| KeyringError::File {
            path: path.clone(),
            source,
        };
        let metadata = std::fs::metadata(&path).map_err(file_error)?;
        {
            use std::os::unix::fs::PermissionsExt;
            if metadata.permissions().mode() & 0o077 != 0 {
                return Err(KeyringError::Permissions(path));
            }
        }
        if metadata.len() > MAX_KEYRING_BYTES {
            return Err(KeyringError::Malformed("larger than 1 MiB"));
        }
        let text = std::fs::read_to_string(&path).map_err(file_error)?;
        let mut keyring = Self::parse(&text, false)?;
        keyring.file = Some(path);
        Ok(keyring)
    }

    fn parse(text: &str, from_env: bool) -> Result<Keyring, KeyringError> {
        let file: KeyringFile = serde_json::from_str(text)
            .map_err(|_| KeyringError::Malformed("not the keyring JSON format"))?;
        if file.version != 1 {
            return Err(KeyringError::Malformed("unknown version"));
        }
        let mut material = BTreeMap::new();
        for (id, encoded) in &file.keys {
            let bytes = STANDARD
                .decode(encoded)
                .map_err(|_| KeyringError::Malformed("a key is not base64"))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| KeyringError::Malformed("a key is not 32 bytes"))?;
            material.insert(*id, key);
        }
        if !material.contains_key(&file.active) {
            return Err(KeyringError::Malformed("the active key is missing"));
        }
        Self::from_material(material, file.active, from_env)
    }

    fn from_material(
        material: BTreeMap<u32, [u8; 32]>,
        active: u32,
        from_env: bool,
    ) -> Result<Keyring, KeyringError> {
        let mut keys = BTreeMap::new();
        for (id, bytes) in &material {
            let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::Key)?;
            keys.insert(*id, LessSafeKey::new(key));
        }
        Ok(Keyring {
            keys,
            material,
            active,
            from_env,
            file: None,
        })
    }

    /// Adds a fresh KEK, makes it active, and writes the file. Returns the new id. Data keys
    /// still wrapped under older KEKs keep working until re-wrapped.
    pub fn rotate(&mut self, data_dir: &Path) -> Result<u32, KeyringError> {
        if self.from_env {
            return Err(KeyringError::ReadOnly);
        }
        let id = self.material.keys().next_back().map_or(1, |last| last + 1);
        self.material.insert(id, new_key_material()?);
        let mut rotated = Self::from_material(self.material.clone(), id, false)?;
        rotated.write(&data_dir.join(KEYRING_FILE), false)?;
        rotated.file = Some(data_dir.join(KEYRING_FILE));
        *self = rotated;
        Ok(id)
    }

    /// Every KEK id, oldest first.
    pub fn ids(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    fn write(&self, path: &Path, new: bool) -> Result<(), KeyringError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let file = KeyringFile {
            version: 1,
            active: self.active,
            keys: self
                .material
                .iter()
                .map(|(id, key)| (*id, STANDARD.encode(key)))
                .collect(),
        };
        let text = serde_json::to_string_pretty(&file)
            .map_err(|_| KeyringError::Malformed("cannot be written"))?;
        let target = if new {
            path.to_owned()
        } else {
            path.with_extension("tmp")
        };
        let file_error = |source| KeyringError::File {
            path: target.clone(),
            source,
        };
        if !new {
            let _ = std::fs::remove_file(&target);
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .map_err(file_error)?;
        out.write_all(text.as_bytes())
            .and_then(|()| out.sync_all())
            .map_err(file_error)?;
        if !new {
            std::fs::rename(&target, path).map_err(|source| KeyringError::File {
                path: path.to_owned(),
                source,
            })?;
        }
        Ok(())
    }
}

impl KeyEncryptionKeys for Keyring {
    fn active_id(&self) -> u32 {
        self.active
    }

    fn wrap(&self, data_key: &[u8; 32], context: &[u8]) -> Result<WrappedKey, SealError> {
        let kek = self
            .keys
            .get(&self.active)
            .ok_or(SealError::UnknownKek(self.active))?;
        Ok(WrappedKey {
            kek_id: self.active,
            blob: seal_with(kek, data_key, &wrap_aad(self.active, context))?,
        })
    }

    fn unwrap_key(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let kek = self
            .keys
            .get(&wrapped.kek_id)
            .ok_or(SealError::UnknownKek(wrapped.kek_id))?;
        open_with(kek, &wrapped.blob, &wrap_aad(wrapped.kek_id, context))
    }
}

fn wrap_aad(kek_id: u32, context: &[u8]) -> Vec<u8> {
    let mut aad = format!("vigil/data-key/v1\0{kek_id}\0").into_bytes();
    aad.extend_from_slice(context);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_rotate_and_load_keep_old_wraps_openable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut keyring = Keyring::create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEYRING_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dek = new_key_material().unwrap();
        let old = keyring.wrap(&dek, b"p-1").unwrap();
        assert_eq!(old.kek_id, 1);
        assert_eq!(keyring.rotate(dir.path()).unwrap(), 2);
        let reloaded = Keyring::load(dir.path(), None).unwrap();
        assert_eq!(reloaded.active_id(), 2);
        assert_eq!(reloaded.unwrap_key(&old, b"p-1").unwrap(), dek);
        assert_eq!(
            reloaded.unwrap_key(&old, b"p-2"),
            Err(SealError::Open),
            "bound to the patient"
        );
        let new = reloaded.wrap(&dek, b"p-1").unwrap();
        assert_eq!(new.kek_id, 2);
        assert!(
            Keyring::create(dir.path()).is_err(),
            "never overwrites a keyring"
        );
    }

    #[test]
    fn refuses_loose_permissions_and_malformed_keyrings() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Keyring::create(dir.path()).unwrap();
        let path = dir.path().join(KEYRING_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Keyring::load(dir.path(), None),
            Err(KeyringError::Permissions(_))
        ));
        for bad in [
            "",
            "{}",
            r#"{"version": 2, "active": 1, "keys": {}}"#,
            r#"{"version": 1, "active": 3, "keys": {"1": "AAAA"}}"#,
            r#"{"version": 1, "active": 1, "keys": {"1": "AAAA"}}"#,
            r#"{"version": 1, "active": 1, "keys": {"1": "!!"}}"#,
        ] {
            let err = Keyring::load(dir.path(), Some(bad)).unwrap_err();
            assert!(matches!(err, KeyringError::Malformed(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn an_environment_keyring_cannot_be_rotated_here() {
        let dir = tempfile::tempdir().unwrap();
        Keyring::create(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(KEYRING_FILE)).unwrap();
        let mut keyring = Keyring::load(dir.path(), Some(&text)).unwrap();
        assert!(matches!(
            keyring.rotate(dir.path()),
            Err(KeyringError::ReadOnly)
        ));
        let printed = format!("{keyring:?}");
        assert!(
            !printed.contains(&text[40..60]),
            "Debug never shows key material"
        );
    }
}

#[cfg(test)]
mod shared_tests {
    use super::*;

    #[test]
    fn a_shared_keyring_follows_a_rotation_made_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        Keyring::create(dir.path()).unwrap();
        let shared = SharedKeyring::new(Keyring::load(dir.path(), None).unwrap());
        assert_eq!(shared.active_id(), 1);
        // Another process rotates and wraps under the new key.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut elsewhere = Keyring::load(dir.path(), None).unwrap();
        elsewhere.rotate(dir.path()).unwrap();
        let dek = new_key_material().unwrap();
        let wrapped = elsewhere.wrap(&dek, b"p-9").unwrap();
        assert_eq!(wrapped.kek_id, 2);
        assert_eq!(shared.unwrap_key(&wrapped, b"p-9").unwrap(), dek);
        assert_eq!(shared.active_id(), 2);
    }
}
