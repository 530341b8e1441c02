//! Issuing and checking certificates: the two CAs (self-signed, 10 years),
//! the API server's serving certificate and the admin client certificate
//! (1 year each). Existing files are reused while they are still good.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use super::files::{self, CERT_MODE, KEY_MODE};
use super::{Error, ServingNames};

const CA_DAYS: i64 = 3650;
const LEAF_DAYS: i64 = 365;
/// Leaf certificates expiring sooner than this are re-issued at start.
pub(super) const RENEW_BEFORE_DAYS: i64 = 90;

/// A CA loaded or created by [`ensure_ca`].
pub struct Ca {
    pub cert_pem: String,
    pub key: KeyPair,
    /// DER of the CA's subject name (to check who issued a leaf).
    subject: Vec<u8>,
    /// Created in this run: every leaf it signs must be issued again.
    pub created: bool,
}

impl Ca {
    fn issuer(&self, path: &Path) -> Result<Issuer<'_, &KeyPair>, Error> {
        Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// What x509-parser tells about an existing certificate.
#[cfg_attr(not(test), allow(dead_code))] // names and usages are checked by tests
pub struct Inspected {
    pub subject_cn: Option<String>,
    pub subject_o: Vec<String>,
    pub issuer: Vec<u8>,
    pub subject: Vec<u8>,
    pub public_key: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub dns: BTreeSet<String>,
    pub ips: BTreeSet<IpAddr>,
    pub client_auth: bool,
    pub server_auth: bool,
    /// Subject and issuer as text (`CN=…, O=…`), for `certificate check`.
    pub subject_text: String,
    pub issuer_text: String,
    /// The serial number in hex (rotation is seen as a new serial).
    pub serial: String,
    pub is_ca: bool,
}

/// Parses a PEM certificate (the first one in `pem`).
pub fn inspect(path: &Path, pem: &str) -> Result<Inspected, Error> {
    let bad = |message: String| Error::Parse {
        path: path.to_path_buf(),
        message,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| bad(format!("not a pem certificate: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| bad(format!("invalid certificate: {e}")))?;
    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    dns.insert(d.to_ascii_lowercase());
                }
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        ips.insert(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        ips.insert(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    let eku = cert.extended_key_usage().ok().flatten().map(|e| e.value);
    let text = |a: &x509_parser::x509::AttributeTypeAndValue<'_>| a.as_str().ok().map(String::from);
    let inspected = Inspected {
        subject_cn: cert.subject().iter_common_name().next().and_then(text),
        subject_o: cert
            .subject()
            .iter_organization()
            .filter_map(text)
            .collect(),
        issuer: cert.issuer().as_raw().to_vec(),
        subject: cert.subject().as_raw().to_vec(),
        public_key: cert.public_key().raw.to_vec(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        dns,
        ips,
        client_auth: eku.is_some_and(|e| e.client_auth),
        server_auth: eku.is_some_and(|e| e.server_auth),
        subject_text: cert.subject().to_string(),
        issuer_text: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        is_ca: cert.is_ca(),
    };
    Ok(inspected)
}

fn generate_key(what: &'static str) -> Result<KeyPair, Error> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|source| Error::Generate { what, source })
}

fn parse_key(path: &Path, pem: &str) -> Result<KeyPair, Error> {
    KeyPair::from_pem(pem).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        message: format!("invalid private key: {e}"),
    })
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Loads the CA at `cert_path`/`key_path`, or creates it (CN
/// `<cn_prefix>@<unix time>`) when either file is missing. A CA file that
/// exists but cannot be read is an error: replacing a CA silently would
/// invalidate every certificate it signed.
pub fn ensure_ca(cert_path: &Path, key_path: &Path, cn_prefix: &str) -> Result<Ca, Error> {
    if let Some(ca) = load_ca(cert_path, key_path)? {
        tracing::info!(cert = %cert_path.display(), "reusing certificate authority");
        return Ok(ca);
    }
    let key = generate_key("a ca key")?;
    let start = now();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{cn_prefix}@{}", start.unix_timestamp()),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = start;
    params.not_after = start + Duration::days(CA_DAYS);
    let cert = params.self_signed(&key).map_err(|source| Error::Generate {
        what: "a ca certificate",
        source,
    })?;
    let cert_pem = cert.pem();
    files::write_atomic(key_path, key.serialize_pem().as_bytes(), KEY_MODE)?;
    files::write_atomic(cert_path, cert_pem.as_bytes(), CERT_MODE)?;
    tracing::info!(cert = %cert_path.display(), "created certificate authority");
    let subject = inspect(cert_path, &cert_pem)?.subject;
    Ok(Ca {
        cert_pem,
        key,
        subject,
        created: true,
    })
}

/// Loads an existing CA; `None` when either file is missing (renewal and
/// rotation never create a CA).
pub fn load_ca(cert_path: &Path, key_path: &Path) -> Result<Option<Ca>, Error> {
    let (Some(cert_pem), Some(key_pem)) = (
        files::read_optional(cert_path)?,
        files::read_optional(key_path)?,
    ) else {
        return Ok(None);
    };
    let key = parse_key(key_path, &key_pem)?;
    let info = inspect(cert_path, &cert_pem)?;
    if info.public_key != key.subject_public_key_info() {
        return Err(Error::Parse {
            path: cert_path.to_path_buf(),
            message: format!("does not match the key in {}", key_path.display()),
        });
    }
    Ok(Some(Ca {
        cert_pem,
        key,
        subject: info.subject,
        created: false,
    }))
}

/// Why an existing leaf must be issued again, or `None` to reuse it.
pub fn leaf_problem(
    cert_path: &Path,
    key_path: &Path,
    ca: &Ca,
    names: Option<&ServingNames>,
) -> Result<Option<String>, Error> {
    if ca.created {
        return Ok(Some("its ca is new".into()));
    }
    let (Some(cert_pem), Some(key_pem)) = (
        files::read_optional(cert_path)?,
        files::read_optional(key_path)?,
    ) else {
        return Ok(Some("missing".into()));
    };
    let Ok(info) = inspect(cert_path, &cert_pem) else {
        return Ok(Some("unreadable certificate".into()));
    };
    let Ok(key) = parse_key(key_path, &key_pem) else {
        return Ok(Some("unreadable key".into()));
    };
    if info.public_key != key.subject_public_key_info() {
        return Ok(Some("key does not match".into()));
    }
    if info.issuer != ca.subject {
        return Ok(Some("issued by another ca".into()));
    }
    if info.not_after < (now() + Duration::days(RENEW_BEFORE_DAYS)).unix_timestamp() {
        return Ok(Some("expires within 90 days".into()));
    }
    if let Some(names) = names {
        let missing: Vec<String> = names
            .dns
            .iter()
            .filter(|d| !info.dns.contains(*d))
            .cloned()
            .chain(
                names
                    .ips
                    .iter()
                    .filter(|ip| !info.ips.contains(ip))
                    .map(|ip| ip.to_string()),
            )
            .collect();
        if !missing.is_empty() {
            return Ok(Some(format!("lacks {}", missing.join(", "))));
        }
    }
    Ok(None)
}

struct Leaf<'a> {
    what: &'static str,
    cn: &'a str,
    orgs: &'a [&'a str],
    sans: Vec<String>,
    eku: ExtendedKeyUsagePurpose,
    days: i64,
}

fn issue_leaf(cert_path: &Path, key_path: &Path, ca: &Ca, leaf: Leaf<'_>) -> Result<(), Error> {
    let key = generate_key(leaf.what)?;
    let generate = |source| Error::Generate {
        what: leaf.what,
        source,
    };
    let mut params = CertificateParams::new(leaf.sans).map_err(generate)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    for o in leaf.orgs {
        params.distinguished_name.push(DnType::OrganizationName, *o);
    }
    params.distinguished_name.push(DnType::CommonName, leaf.cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![leaf.eku];
    params.use_authority_key_identifier_extension = true;
    let start = now();
    params.not_before = start;
    params.not_after = start + Duration::days(leaf.days);
    let cert = params
        .signed_by(&key, &ca.issuer(cert_path)?)
        .map_err(generate)?;
    files::write_atomic(key_path, key.serialize_pem().as_bytes(), KEY_MODE)?;
    files::write_atomic(cert_path, cert.pem().as_bytes(), CERT_MODE)?;
    Ok(())
}

fn serving_leaf(names: &ServingNames, days: i64) -> Leaf<'static> {
    Leaf {
        what: "the serving certificate",
        cn: "kube-apiserver",
        orgs: &[],
        sans: names.all(),
        eku: ExtendedKeyUsagePurpose::ServerAuth,
        days,
    }
}

/// The API server's serving certificate, signed by the server CA.
pub fn ensure_serving(
    cert_path: &Path,
    key_path: &Path,
    ca: &Ca,
    names: &ServingNames,
) -> Result<(), Error> {
    match leaf_problem(cert_path, key_path, ca, Some(names))? {
        None => tracing::info!(cert = %cert_path.display(), "reusing serving certificate"),
        Some(reason) => {
            issue_leaf(cert_path, key_path, ca, serving_leaf(names, LEAF_DAYS))?;
            tracing::info!(cert = %cert_path.display(), %reason, "issued serving certificate");
        }
    }
    Ok(())
}

/// The admin client certificate (`system:admin`, group `system:masters`),
/// signed by the client CA.
pub fn ensure_admin(cert_path: &Path, key_path: &Path, ca: &Ca) -> Result<(), Error> {
    match leaf_problem(cert_path, key_path, ca, None)? {
        None => tracing::info!(cert = %cert_path.display(), "reusing admin client certificate"),
        Some(reason) => {
            issue_admin(cert_path, key_path, ca, LEAF_DAYS)?;
            tracing::info!(cert = %cert_path.display(), %reason, "issued admin client certificate");
        }
    }
    Ok(())
}

/// Issues the admin client certificate unconditionally, valid for `days`.
pub fn issue_admin(cert_path: &Path, key_path: &Path, ca: &Ca, days: i64) -> Result<(), Error> {
    let leaf = Leaf {
        what: "the admin client certificate",
        cn: "system:admin",
        orgs: &["system:masters"],
        sans: Vec::new(),
        eku: ExtendedKeyUsagePurpose::ClientAuth,
        days,
    };
    issue_leaf(cert_path, key_path, ca, leaf)
}

/// Issues the serving certificate unconditionally for `names`, valid for
/// `days` (renewal, rotation).
pub fn issue_serving(
    cert_path: &Path,
    key_path: &Path,
    ca: &Ca,
    names: &ServingNames,
    days: i64,
) -> Result<(), Error> {
    issue_leaf(cert_path, key_path, ca, serving_leaf(names, days))
}

/// Leaf certificates are issued for this many days.
pub(super) const LEAF_VALIDITY_DAYS: i64 = LEAF_DAYS;
