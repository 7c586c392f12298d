//! The token server's key and certificate, and RS256 JWTs signed with them.
//!
//! distribution 2.8 verifies a token's signature with the key of the first certificate of the
//! JWT header's `x5c` chain, once that chain verifies against its `rootcertbundle`; a self-signed
//! certificate that is both the whole chain and the bundle is enough.

use crate::Error;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer as _};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::OnceLock;

/// An RSA key and a self-signed certificate for it.
pub(crate) struct Signer {
    key: SigningKey<Sha256>,
    cert_der: Vec<u8>,
    cert_pem: String,
}

/// The process's signer: generating a 2048-bit RSA key takes a while in a debug build, so every
/// token server of one test binary shares one.
pub(crate) fn signer() -> Result<&'static Signer, Error> {
    static SIGNER: OnceLock<Result<Signer, String>> = OnceLock::new();
    SIGNER
        .get_or_init(|| Signer::generate().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::Crypto(e.clone()))
}

impl Signer {
    fn generate() -> Result<Signer, Error> {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            .map_err(|e| Error::Crypto(format!("generating the RSA key: {e}")))?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Error::Crypto(format!("encoding the RSA key: {e}")))?;
        let key_pair = rcgen::KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| Error::Crypto(format!("loading the RSA key into rcgen: {e}")))?;
        let mut params = rcgen::CertificateParams::new(vec!["ocistore-test-token-issuer".into()])
            .map_err(|e| Error::Crypto(format!("certificate parameters: {e}")))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ocistore test token issuer");
        let cert = params
            .self_signed(&key_pair)
            .map_err(|e| Error::Crypto(format!("self-signing the certificate: {e}")))?;
        Ok(Signer {
            key: SigningKey::<Sha256>::new(key),
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
        })
    }

    /// The certificate in PEM, as the registry's `rootcertbundle` wants it.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A compact JWT (`header.claims.signature`) carrying `claims`, signed RS256, with the
    /// certificate in the header's `x5c`.
    pub fn sign(&self, claims: &Value) -> String {
        let header =
            json!({"typ": "JWT", "alg": "RS256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

/// The claims of a JWT, unverified.
pub(crate) fn claims_of(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}
