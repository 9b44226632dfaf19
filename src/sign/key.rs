//! Signing keys in the formats cosign reads and writes: its own encrypted PEM
//! (`ENCRYPTED SIGSTORE PRIVATE KEY`: a JSON envelope of scrypt parameters, a NaCl secretbox
//! nonce and the sealed PKCS#8 key, as go-securesystemslib's `encrypted` package writes it),
//! or an unencrypted PKCS#8 P-256 PEM; public keys as PEM `PUBLIC KEY` (SPKI).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

/// The label cosign writes (since 2.0) and reads.
pub const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label cosign wrote before 2.0, which it still reads.
pub const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
const PKCS8_LABEL: &str = "PRIVATE KEY";

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("it is not a PEM file: {0}")]
    NotPem(String),
    #[error(
        "it is a PEM `{0}`: mab reads `{SIGSTORE_LABEL}` (cosign's), `{COSIGN_LABEL}` and an unencrypted PKCS#8 `{PKCS8_LABEL}`"
    )]
    Label(String),
    #[error("its encrypted envelope is malformed: {0}")]
    Envelope(String),
    /// The scrypt parameters are checked before use, as go-securesystemslib does: a key file
    /// is repository input, and huge parameters would make mab spend minutes or gigabytes.
    #[error(
        "its scrypt parameters (N={n}, r={r}, p={p}) are not one of cosign's (N=2^15, 2^16 or 2^17, r=8, p=1)"
    )]
    Params { n: u64, r: u32, p: u32 },
    #[error("COSIGN_PASSWORD is not set, and the key is encrypted")]
    NoPassword,
    #[error("the password does not open it (COSIGN_PASSWORD is wrong, or the file was changed)")]
    Password,
    #[error("it holds no ECDSA P-256 private key: {0}")]
    NotP256(String),
    #[error("it holds no ECDSA P-256 public key: {0}")]
    NotP256Public(String),
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

/// Go's `encoding/json` writes `[]byte` as standard base64.
mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// What go-securesystemslib writes (`Standard`, about 100 ms) and the others it accepts.
const STANDARD_PARAMS: ScryptParams = ScryptParams {
    n: 1 << 16,
    r: 8,
    p: 1,
};
const ACCEPTED_LOG_N: [u8; 3] = [15, 16, 17];

fn derive(password: &[u8], salt: &[u8], params: ScryptParams) -> Result<[u8; 32], KeyError> {
    let log_n = ACCEPTED_LOG_N
        .into_iter()
        .find(|l| 1u64 << l == params.n)
        .filter(|_| params.r == 8 && params.p == 1)
        .ok_or(KeyError::Params {
            n: params.n,
            r: params.r,
            p: params.p,
        })?;
    let scrypt_params =
        scrypt::Params::new(log_n, params.r, params.p, 32).expect("cosign's parameters are valid");
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &scrypt_params, &mut key)
        .expect("32 bytes is a valid output length");
    Ok(key)
}

/// Reads a private key: cosign's encrypted format (opened with `password`), or PKCS#8.
pub fn parse_private(text: &str, password: Option<&[u8]>) -> Result<SigningKey, KeyError> {
    let (label, der) =
        pem::decode_vec(text.trim().as_bytes()).map_err(|e| KeyError::NotPem(e.to_string()))?;
    let pkcs8 = match label {
        SIGSTORE_LABEL | COSIGN_LABEL => {
            let password = password.ok_or(KeyError::NoPassword)?;
            decrypt(&der, password)?
        }
        PKCS8_LABEL => der,
        other => return Err(KeyError::Label(other.to_string())),
    };
    SigningKey::from_pkcs8_der(&pkcs8).map_err(|e| KeyError::NotP256(e.to_string()))
}

/// Whether `text` is a key that needs a password to open.
pub fn is_encrypted(text: &str) -> bool {
    let first = text.trim_start().lines().next().unwrap_or("");
    [SIGSTORE_LABEL, COSIGN_LABEL]
        .iter()
        .any(|l| first == format!("-----BEGIN {l}-----"))
}

fn decrypt(envelope: &[u8], password: &[u8]) -> Result<Vec<u8>, KeyError> {
    let e: Envelope =
        serde_json::from_slice(envelope).map_err(|e| KeyError::Envelope(e.to_string()))?;
    if e.kdf.name != "scrypt" || e.cipher.name != "nacl/secretbox" {
        return Err(KeyError::Envelope(format!(
            "kdf `{}` and cipher `{}`, not `scrypt` and `nacl/secretbox`",
            e.kdf.name, e.cipher.name
        )));
    }
    if e.cipher.nonce.len() != 24 {
        return Err(KeyError::Envelope("its nonce is not 24 bytes".into()));
    }
    let key = derive(password, &e.kdf.salt, e.kdf.params)?;
    XSalsa20Poly1305::new(&key.into())
        .decrypt(Nonce::from_slice(&e.cipher.nonce), e.ciphertext.as_slice())
        .map_err(|_| KeyError::Password)
}

/// Seals PKCS#8 `der` as cosign does: scrypt (go-securesystemslib's standard parameters) with
/// a fresh salt, secretbox with a fresh nonce.
fn encrypt(der: &[u8], password: &[u8]) -> Vec<u8> {
    let mut salt = vec![0u8; 32];
    let mut nonce = vec![0u8; 24];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let key = derive(password, &salt, STANDARD_PARAMS).expect("the standard parameters");
    let ciphertext = XSalsa20Poly1305::new(&key.into())
        .encrypt(Nonce::from_slice(&nonce), der)
        .expect("sealing cannot fail");
    serde_json::to_vec(&Envelope {
        kdf: Kdf {
            name: "scrypt".into(),
            params: STANDARD_PARAMS,
            salt,
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce,
        },
        ciphertext,
    })
    .expect("the envelope serializes")
}

/// A new key pair as `cosign generate-key-pair` writes it: the private key encrypted with
/// `password` (PEM `ENCRYPTED SIGSTORE PRIVATE KEY`), the public key as PEM `PUBLIC KEY`.
pub fn generate(password: &[u8]) -> (String, String) {
    let key = SigningKey::random(&mut OsRng);
    let der = key.to_pkcs8_der().expect("a P-256 key encodes");
    let private = pem::encode_string(
        SIGSTORE_LABEL,
        LineEnding::LF,
        &encrypt(der.as_bytes(), password),
    )
    .expect("PEM encodes");
    (private, public_pem(key.verifying_key()))
}

/// The public key as PEM `PUBLIC KEY` (SPKI), as `cosign.pub` holds it.
pub fn public_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF)
        .expect("a P-256 key encodes")
}

/// Reads a public key (PEM `PUBLIC KEY`).
pub fn parse_public(text: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(text.trim())
        .map_err(|e| KeyError::NotP256Public(e.to_string()))
}

/// Standard base64, as cosign writes signatures.
pub fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cosign's own test key (sigstore/cosign pkg/cosign/keys_test.go, `pemsigstorekey`),
    /// password "hello": a key made by cosign, not by mab.
    const COSIGN_MADE: &str = include_str!("../../tests/fixtures/cosign-made.key");

    #[test]
    fn a_key_made_by_cosign_opens_with_its_password() {
        let key = parse_private(COSIGN_MADE, Some(b"hello")).unwrap();
        // It signs, and its public key checks what it signed.
        use p256::ecdsa::signature::{Signer, Verifier};
        let sig: p256::ecdsa::Signature = key.sign(b"payload");
        key.verifying_key().verify(b"payload", &sig).unwrap();
    }

    #[test]
    fn the_cosign_made_key_matches_its_public_fixture() {
        let key = parse_private(COSIGN_MADE, Some(b"hello")).unwrap();
        if std::env::var_os("MAB_PRINT_FIXTURE").is_some() {
            print!("{}", public_pem(key.verifying_key()));
        }
        let public = include_str!("../../tests/fixtures/cosign-made.pub");
        assert_eq!(*key.verifying_key(), parse_public(public).unwrap());
    }

    #[test]
    fn a_wrong_password_is_refused() {
        assert!(matches!(
            parse_private(COSIGN_MADE, Some(b"hell0")),
            Err(KeyError::Password)
        ));
        assert!(matches!(
            parse_private(COSIGN_MADE, None),
            Err(KeyError::NoPassword)
        ));
    }

    #[test]
    fn generated_pairs_open_and_match() {
        let (private, public) = generate(b"pw");
        assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(is_encrypted(&private));
        let key = parse_private(&private, Some(b"pw")).unwrap();
        assert_eq!(*key.verifying_key(), parse_public(&public).unwrap());
        assert!(matches!(
            parse_private(&private, Some(b"px")),
            Err(KeyError::Password)
        ));
    }

    #[test]
    fn unencrypted_pkcs8_is_read() {
        let key = SigningKey::random(&mut OsRng);
        let text = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert!(!is_encrypted(&text));
        let read = parse_private(&text, None).unwrap();
        assert_eq!(read.verifying_key(), key.verifying_key());
    }

    #[test]
    fn costly_scrypt_parameters_are_refused_before_use() {
        let envelope = serde_json::json!({
            "kdf": {"name": "scrypt", "params": {"N": 1u64 << 30, "r": 8, "p": 1}, "salt": "AAAA"},
            "cipher": {"name": "nacl/secretbox", "nonce": STANDARD.encode([0u8; 24])},
            "ciphertext": "AAAA"
        });
        let text = pem::encode_string(
            SIGSTORE_LABEL,
            LineEnding::LF,
            envelope.to_string().as_bytes(),
        )
        .unwrap();
        assert!(matches!(
            parse_private(&text, Some(b"x")),
            Err(KeyError::Params { .. })
        ));
    }

    #[test]
    fn other_pem_labels_are_named() {
        let text = pem::encode_string("RSA PRIVATE KEY", LineEnding::LF, b"x").unwrap();
        let err = parse_private(&text, None).unwrap_err().to_string();
        assert!(err.contains("RSA PRIVATE KEY"), "{err}");
    }
}
