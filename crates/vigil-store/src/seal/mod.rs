//! Sealing PHI at rest: envelope encryption with a data key per patient.
//!
//! ```text
//!  keyring (outside the database)          database
//!  KEK 1, KEK 2 (active) ──wraps──▶ patient_keys: DEK of p-17 (wrapped, bound to "p-17")
//!                                   patients.name / mrn / birth_date ──sealed with DEK, AD = row + field
//!                                   observations.value ──sealed with DEK, AD = device, seq, quantity, time
//! ```
//!
//! - AEAD: AES-256-GCM (aws-lc-rs), a fresh random 96-bit nonce per value. A sealed value is
//!   `0x01 || nonce (12) || ciphertext || tag (16)`.
//! - The associated data names the table, the row's identity and the field, so a ciphertext
//!   copied into another row, field or patient fails to open.
//! - A patient's data key is wrapped under the active key-encryption key with the patient id as
//!   associated data. Erasing a patient deletes the wrapped key (crypto-shredding): the sealed
//!   values stay, unreadable by anyone, while the audit log (which holds only hashes) still
//!   verifies.
//! - Rotation adds a KEK and re-wraps every data key under it; data is never re-encrypted.

pub mod keyring;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

pub use keyring::{
    KEYRING_ENV, KEYRING_FILE, KeyEncryptionKeys, Keyring, KeyringError, SharedKeyring, WrappedKey,
};

/// Version byte of a sealed value.
const VERSION: u8 = 1;
/// Bytes a sealed value adds to its plaintext.
pub const OVERHEAD: usize = 1 + NONCE_LEN + 16;

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The ciphertext, its associated data or the key do not match: tampering, a value moved
    /// between rows, or a wrong key.
    #[error("sealed value does not open (tampered, moved, or wrong key)")]
    Open,
    /// The random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// A key has the wrong length.
    #[error("key material is malformed")]
    Key,
    /// The patient's data key was erased.
    #[error("the patient's data key has been erased")]
    Erased,
    /// A key-encryption key named by a wrapped key is not in the keyring.
    #[error("key-encryption key {0} is not in the keyring")]
    UnknownKek(u32),
}

/// A patient's data key, ready to seal and open.
pub struct DataKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    /// A data key from 32 bytes of key material.
    pub fn from_bytes(bytes: &[u8]) -> Result<DataKey, SealError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::Key)?;
        Ok(DataKey {
            key: LessSafeKey::new(key),
        })
    }

    /// Seals `plaintext`, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        seal_with(&self.key, plaintext, aad)
    }

    /// Opens a sealed value bound to `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        open_with(&self.key, sealed, aad)
    }

    /// Opens a sealed value bound to `aad` in `scratch` (reused, so that opening many values
    /// allocates once); the plaintext is the start of `scratch`.
    pub fn open_into<'s>(
        &self,
        sealed: &[u8],
        aad: &[u8],
        scratch: &'s mut Vec<u8>,
    ) -> Result<&'s [u8], SealError> {
        let (nonce, body) = split_sealed(sealed)?;
        scratch.clear();
        scratch.extend_from_slice(body);
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(aad), scratch)
            .map_err(|_| SealError::Open)?;
        Ok(plaintext)
    }
}

/// The nonce and the ciphertext with its tag, of a sealed value of this version.
fn split_sealed(sealed: &[u8]) -> Result<(Nonce, &[u8]), SealError> {
    let (version, rest) = sealed.split_first().ok_or(SealError::Open)?;
    if *version != VERSION || rest.len() < NONCE_LEN + 16 {
        return Err(SealError::Open);
    }
    let (nonce, body) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
    Ok((nonce, body))
}

/// 32 random bytes of new key material.
pub fn new_key_material() -> Result<[u8; 32], SealError> {
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| SealError::Random)?;
    Ok(key)
}

pub(crate) fn seal_with(
    key: &LessSafeKey,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealError::Random)?;
    let mut sealed = Vec::with_capacity(plaintext.len() + OVERHEAD);
    sealed.push(VERSION);
    sealed.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .map_err(|_| SealError::Open)?;
    sealed.extend_from_slice(&body);
    Ok(sealed)
}

pub(crate) fn open_with(
    key: &LessSafeKey,
    sealed: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, SealError> {
    let (nonce, body) = split_sealed(sealed)?;
    let mut body = body.to_vec();
    let plaintext = key
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .map_err(|_| SealError::Open)?;
    Ok(plaintext.to_vec())
}

/// Associated data for a patient's identifying field: binds the ciphertext to the patient and
/// the field.
pub fn patient_field_aad(patient: &str, field: &str) -> Vec<u8> {
    format!("vigil/patient/v1\0{patient}\0{field}").into_bytes()
}

/// Associated data for an observation's value: binds it to the patient, device, sequence,
/// quantity and time of its row.
pub fn observation_aad(
    patient: &str,
    device: &str,
    sequence: u64,
    quantity: u32,
    time: i64,
) -> Vec<u8> {
    let mut aad = Vec::new();
    observation_aad_into(&mut aad, patient, device, sequence, quantity, time);
    aad
}

/// [`observation_aad`] into a reused buffer (the ingest path seals one value per observation).
pub fn observation_aad_into(
    aad: &mut Vec<u8>,
    patient: &str,
    device: &str,
    sequence: u64,
    quantity: u32,
    time: i64,
) {
    // Byte for byte what `write!(aad, "vigil/observation/v1\0{patient}\0{device}\0{sequence}
    // \0{quantity}\0{time}")` gives, without the formatting machinery: a page of 10,000
    // observations builds it 10,000 times.
    let mut digits = itoa::Buffer::new();
    aad.clear();
    aad.extend_from_slice(b"vigil/observation/v1\0");
    aad.extend_from_slice(patient.as_bytes());
    aad.push(0);
    aad.extend_from_slice(device.as_bytes());
    aad.push(0);
    aad.extend_from_slice(digits.format(sequence).as_bytes());
    aad.push(0);
    aad.extend_from_slice(digits.format(quantity).as_bytes());
    aad.push(0);
    aad.extend_from_slice(digits.format(time).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_associated_data() {
        let key = DataKey::from_bytes(&new_key_material().unwrap()).unwrap();
        let other = DataKey::from_bytes(&new_key_material().unwrap()).unwrap();
        let aad = observation_aad("p-1", "oxi-1", 7, 150_456, 1000);
        let sealed = key.seal(b"97.5", &aad).unwrap();
        assert_eq!(sealed.len(), 4 + OVERHEAD);
        assert_eq!(key.open(&sealed, &aad).unwrap(), b"97.5");
        assert_eq!(other.open(&sealed, &aad), Err(SealError::Open));
        let moved = observation_aad("p-2", "oxi-1", 7, 150_456, 1000);
        assert_eq!(key.open(&sealed, &moved), Err(SealError::Open));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(&flipped, &aad), Err(SealError::Open));
        assert_eq!(key.open(&[], &aad), Err(SealError::Open));
        assert_eq!(key.open(&sealed[..10], &aad), Err(SealError::Open));
        assert_ne!(
            key.seal(b"97.5", &aad).unwrap(),
            sealed,
            "fresh nonce every time"
        );
    }

    #[test]
    fn observation_associated_data_is_the_stored_format_byte_for_byte() {
        // Values sealed before the hand-written form must still open: the bytes are fixed.
        for (patient, device, sequence, quantity, time) in [
            ("p-1", "oxi-1", 7, 150_456, 1000),
            ("patient-0001", "mon-7", u64::MAX, u32::MAX, i64::MIN),
            ("p", "d", 0, 0, 0),
            ("p", "d", 1, 1, -1_764_403_200_250),
        ] {
            let expected = format!(
                "vigil/observation/v1\0{patient}\0{device}\0{sequence}\0{quantity}\0{time}"
            );
            let mut aad = b"left over".to_vec();
            observation_aad_into(&mut aad, patient, device, sequence, quantity, time);
            assert_eq!(aad, expected.as_bytes());
        }
    }

    #[test]
    fn opening_into_a_scratch_buffer_refuses_what_open_refuses() {
        let key = DataKey::from_bytes(&new_key_material().unwrap()).unwrap();
        let aad = observation_aad("p-1", "oxi-1", 7, 150_456, 1000);
        let sealed = key.seal(&72.5f64.to_be_bytes(), &aad).unwrap();
        let mut scratch = Vec::new();
        assert_eq!(
            key.open_into(&sealed, &aad, &mut scratch).unwrap(),
            72.5f64.to_be_bytes()
        );
        let other = key.seal(b"a longer plaintext", &aad).unwrap();
        assert_eq!(
            key.open_into(&other, &aad, &mut scratch).unwrap(),
            b"a longer plaintext"
        );
        let moved = observation_aad("p-2", "oxi-1", 7, 150_456, 1000);
        assert_eq!(
            key.open_into(&sealed, &moved, &mut scratch),
            Err(SealError::Open)
        );
        let mut flipped = sealed.clone();
        flipped[3] ^= 1;
        assert_eq!(
            key.open_into(&flipped, &aad, &mut scratch),
            Err(SealError::Open)
        );
        assert_eq!(key.open_into(&[], &aad, &mut scratch), Err(SealError::Open));
        assert_eq!(
            key.open_into(&sealed[..12], &aad, &mut scratch),
            Err(SealError::Open)
        );
        let mut old_version = sealed;
        old_version[0] = 0;
        assert_eq!(
            key.open_into(&old_version, &aad, &mut scratch),
            Err(SealError::Open)
        );
    }

    #[test]
    fn associated_data_separates_fields_unambiguously() {
        assert_ne!(
            patient_field_aad("p-1", "name"),
            patient_field_aad("p-1", "mrn")
        );
        assert_ne!(
            observation_aad("p-1", "d", 12, 3, 4),
            observation_aad("p-1", "d1", 2, 3, 4)
        );
    }
}
