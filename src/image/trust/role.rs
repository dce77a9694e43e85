//! What each certificate found in a firmware is for: a root or an intermediate it trusts, a
//! server's certificate pinned in their place, or the device's own client certificate, told
//! apart by the CA flag, the self-signature, the extended key usage and the private keys
//! beside them.

use x509_parser::prelude::X509Certificate;

use super::{TrustItem, TrustKind};
use crate::image::keys::PrivateKeyItem;

/// What a certificate (or bundle root) is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrustRole {
    /// A self-signed CA certificate: a root. Every root of a certificate bundle is one.
    CaRoot,
    /// A CA certificate signed by another CA: trusting it pins an intermediate.
    IntermediateCa,
    /// Not a CA, among the trust material: a server's own certificate pinned in place of a
    /// CA. mbedTLS accepts a non-CA certificate in its trust list only as an exact copy of a
    /// self-issued server certificate (`x509_crt_check_ee_locally_trusted`); a CA-issued one
    /// anchors nothing.
    PinnedLeaf,
    /// The device's own certificate for mutual TLS, not trust: its extended key usage is
    /// clientAuth without serverAuth, or its private key is in the image too.
    ClientCertificate,
}

impl TrustRole {
    /// The kebab-case name the JSON output uses (`ca-root`, `intermediate-ca`, `pinned-leaf`,
    /// `client-certificate`).
    pub fn name(self) -> &'static str {
        match self {
            TrustRole::CaRoot => "ca-root",
            TrustRole::IntermediateCa => "intermediate-ca",
            TrustRole::PinnedLeaf => "pinned-leaf",
            TrustRole::ClientCertificate => "client-certificate",
        }
    }

    /// Whether the device verifies servers against it (everything but its own certificate).
    pub(crate) fn is_trusted(self) -> bool {
        self != TrustRole::ClientCertificate
    }
}

/// The TLS sides a certificate's extended key usage allows: both when it has none or allows
/// any usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TlsUsage {
    pub server_auth: bool,
    pub client_auth: bool,
}

impl TlsUsage {
    pub(super) fn of(cert: &X509Certificate<'_>) -> TlsUsage {
        match cert.extended_key_usage() {
            Ok(Some(eku)) => TlsUsage {
                server_auth: eku.value.any || eku.value.server_auth,
                client_auth: eku.value.any || eku.value.client_auth,
            },
            _ => TlsUsage { server_auth: true, client_auth: true },
        }
    }
}

impl super::CertInfo {
    /// The role the certificate has on its own: by its CA flag and self-signature, and for a
    /// non-CA by its extended key usage. In a firmware, a leaf next to its private key is a
    /// client certificate too ([`TrustItem::role`] says so).
    pub fn role(&self) -> TrustRole {
        match (self.is_ca, self.self_signed) {
            (true, true) => TrustRole::CaRoot,
            (true, false) => TrustRole::IntermediateCa,
            (false, _) if self.tls_usage.client_auth && !self.tls_usage.server_auth => TrustRole::ClientCertificate,
            (false, _) => TrustRole::PinnedLeaf,
        }
    }
}

/// At most this many bytes between a certificate and a key that cannot be matched by its
/// public half, for them to count as a pair: `EMBED_TXTFILES` puts files of one component
/// side by side, with a NUL and alignment between them.
const PAIR_GAP: usize = 64;

/// Leaves whose private key is in `keys` become client certificates: the key's public half
/// equals the certificate's key, or, for keys that do not hold their public half (encrypted
/// keys, Ed25519 in PKCS#8 v1), the key sits right next to the leaf.
pub(super) fn pair_with_keys(items: &mut [TrustItem], keys: &[PrivateKeyItem]) {
    for key in keys {
        let paired = match key.public_key_sha256 {
            Some(public) => items.iter().position(|item| cert_key(item) == Some(public)),
            None => neighbour(items, keys, key),
        };
        if let Some(item) = paired.map(|at| &mut items[at])
            && item.role == TrustRole::PinnedLeaf
        {
            item.role = TrustRole::ClientCertificate;
        }
    }
}

fn cert_key(item: &TrustItem) -> Option<[u8; 32]> {
    match &item.kind {
        TrustKind::Pem(info) | TrustKind::Der(info) => Some(info.public_key_sha256),
        TrustKind::Bundle { .. } => None,
    }
}

/// The certificate right before or after `key` (within [`PAIR_GAP`] bytes, no other key
/// between them), the closer one if both are.
fn neighbour(items: &[TrustItem], keys: &[PrivateKeyItem], key: &PrivateKeyItem) -> Option<usize> {
    let key_end = key.offset + key.len;
    let between = |from: usize, to: usize| keys.iter().any(|k| k.offset >= from && k.offset + k.len <= to && k != key);
    let before = items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.offset + item.len <= key.offset && cert_key(item).is_some())
        .max_by_key(|(_, item)| item.offset)
        .map(|(at, item)| (at, key.offset - (item.offset + item.len)))
        .filter(|&(at, gap)| !between(items[at].offset + items[at].len, key.offset) && gap <= PAIR_GAP);
    let after = items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.offset >= key_end && cert_key(item).is_some())
        .min_by_key(|(_, item)| item.offset)
        .map(|(at, item)| (at, item.offset - key_end))
        .filter(|&(at, gap)| !between(key_end, items[at].offset) && gap <= PAIR_GAP);
    [before, after].into_iter().flatten().min_by_key(|&(_, gap)| gap).map(|(at, _)| at)
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        PKCS_ECDSA_P256_SHA256,
    };

    use super::*;
    use crate::image::{BundleEntry, BundleFormat, CertBundle, find_trust, scan_trust};

    /// A certificate named `name`, self-signed or signed by `issuer`, and its key.
    struct Made {
        params: CertificateParams,
        key: KeyPair,
        pem: String,
    }

    fn make(name: &str, ca: bool, eku: &[ExtendedKeyUsagePurpose], issuer: Option<&Made>) -> Made {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec![format!("{name}.lab.test")]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = if ca { IsCa::Ca(BasicConstraints::Unconstrained) } else { IsCa::NoCa };
        params.extended_key_usages = eku.to_vec();
        let cert = match issuer {
            Some(issuer) => params.signed_by(&key, &Issuer::from_params(&issuer.params, &issuer.key)).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        Made { pem: cert.pem(), params, key }
    }

    /// `parts` laid out as `EMBED_TXTFILES` stores them: each with its NUL, 200 bytes apart
    /// unless `close`.
    fn embed(parts: &[&str], close: bool) -> Vec<u8> {
        let mut image = vec![0x11; 40];
        for part in parts {
            image.extend_from_slice(part.as_bytes());
            image.push(0);
            image.extend(std::iter::repeat_n(0x22, if close { 3 } else { 200 }));
        }
        image
    }

    fn roles(image: &[u8]) -> Vec<TrustRole> {
        find_trust(image).into_iter().map(|item| item.role).collect()
    }

    use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    use TrustRole::*;

    #[test]
    fn roots_intermediates_pinned_leaves_and_client_certificates() {
        let root = make("Lab Root", true, &[], None);
        let intermediate = make("Lab Intermediate", true, &[], Some(&root));
        let server = make("ota-server", false, &[ServerAuth], Some(&intermediate));
        let self_signed_server = make("self-signed-ota-server", false, &[], None);
        let client = make("device-42", false, &[ClientAuth], Some(&intermediate));
        let both = make("device-43", false, &[ClientAuth, ServerAuth], Some(&intermediate));
        let image =
            embed(&[&root.pem, &intermediate.pem, &server.pem, &self_signed_server.pem, &client.pem, &both.pem], false);
        assert_eq!(
            roles(&image),
            [CaRoot, IntermediateCa, PinnedLeaf, PinnedLeaf, ClientCertificate, PinnedLeaf],
            "a leaf that may also serve is no client certificate by its usage alone"
        );
        assert!(!ClientCertificate.is_trusted() && PinnedLeaf.is_trusted());
        assert_eq!(PinnedLeaf.name(), "pinned-leaf");
    }

    #[test]
    fn a_leaf_whose_key_is_in_the_image_is_the_devices_certificate() {
        let root = make("Lab Root", true, &[], None);
        let device = make("device-7", false, &[], Some(&root));
        let other = make("device-8", false, &[], Some(&root));
        // The key matches by its public half wherever it is: not next to its certificate here.
        let image = embed(&[&device.pem, &root.pem, &other.pem, &device.key.serialize_pem()], false);
        let scan = scan_trust(&image);
        let got: Vec<TrustRole> = scan.items.iter().map(|i| i.role).collect();
        assert_eq!(got, [ClientCertificate, CaRoot, PinnedLeaf]);
        assert_eq!(scan.private_keys.len(), 1);
        // A root's own key beside it leaves it a root.
        assert_eq!(roles(&embed(&[&root.pem, &root.key.serialize_pem()], true)), [CaRoot]);
    }

    #[test]
    fn a_key_without_its_public_half_pairs_with_the_leaf_right_beside_it() {
        let root = make("Lab Root", true, &[], None);
        let device = make("device-9", false, &[], Some(&root));
        let encrypted = pem::encode(&pem::Pem::new("ENCRYPTED PRIVATE KEY", vec![0x30, 0x00]));
        assert_eq!(roles(&embed(&[&root.pem, &device.pem, &encrypted], true)), [CaRoot, ClientCertificate]);
        assert_eq!(roles(&embed(&[&device.pem, &encrypted, &root.pem], true)), [ClientCertificate, CaRoot]);
        assert_eq!(roles(&embed(&[&root.pem, &device.pem, &encrypted], false)), [CaRoot, PinnedLeaf], "too far");
        let other_key = make("unrelated", false, &[], None).key.serialize_pem();
        assert_eq!(
            roles(&embed(&[&device.pem, &other_key, &encrypted], true)),
            [PinnedLeaf],
            "another key between them"
        );
    }

    #[test]
    fn bundle_roots_are_ca_roots() {
        let root = make("Lab Root", true, &[], None);
        let der = pem::parse(&root.pem).unwrap().into_contents();
        let entries = vec![BundleEntry::from_certificate_der(&der).unwrap()];
        let image = [&[0x11; 9][..], &CertBundle::encode(&entries, BundleFormat::BigEndianV44)].concat();
        assert_eq!(roles(&image), [CaRoot]);
    }
}
