//! Cipher suites and keys: which AEAD a suite uses, the TLS 1.3 key schedule step that turns a traffic
//! secret into key and IV (RFC 8446 §7.1, §7.3), the TLS 1.2 key expansion (RFC 5246 §6.3, PRF §5),
//! and opening one record. The primitives are RustCrypto's; only the glue is here.

use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Sha256, Sha384};

/// AEAD authentication tag length, the same for every supported suite.
pub const TAG_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Cipher {
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm => 16,
            Cipher::Aes256Gcm | Cipher::ChaCha20Poly1305 => 32,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    pub fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

/// A cipher suite this tool can decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suite {
    pub id: u16,
    pub name: &'static str,
    pub tls13: bool,
    pub cipher: Cipher,
    pub hash: Hash,
}

/// Written as its id (the state of a parked connection, see spill.rs): the rest follows from it.
impl Serialize for Suite {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.id)
    }
}

impl<'de> Deserialize<'de> for Suite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Suite, D::Error> {
        let id = u16::deserialize(d)?;
        Suite::by_id(id).ok_or_else(|| D::Error::custom("unknown cipher suite"))
    }
}

const SUITES: [Suite; 15] = {
    use Cipher::*;
    use Hash::*;
    const fn s(id: u16, name: &'static str, tls13: bool, cipher: Cipher, hash: Hash) -> Suite {
        Suite {
            id,
            name,
            tls13,
            cipher,
            hash,
        }
    }
    [
        s(0x1301, "TLS_AES_128_GCM_SHA256", true, Aes128Gcm, Sha256),
        s(0x1302, "TLS_AES_256_GCM_SHA384", true, Aes256Gcm, Sha384),
        s(
            0x1303,
            "TLS_CHACHA20_POLY1305_SHA256",
            true,
            ChaCha20Poly1305,
            Sha256,
        ),
        s(
            0xc02b,
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            false,
            Aes128Gcm,
            Sha256,
        ),
        s(
            0xc02c,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            false,
            Aes256Gcm,
            Sha384,
        ),
        s(
            0xc02f,
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            false,
            Aes128Gcm,
            Sha256,
        ),
        s(
            0xc030,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            false,
            Aes256Gcm,
            Sha384,
        ),
        s(
            0xcca8,
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            false,
            ChaCha20Poly1305,
            Sha256,
        ),
        s(
            0xcca9,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            false,
            ChaCha20Poly1305,
            Sha256,
        ),
        s(
            0xccaa,
            "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            false,
            ChaCha20Poly1305,
            Sha256,
        ),
        s(
            0x009c,
            "TLS_RSA_WITH_AES_128_GCM_SHA256",
            false,
            Aes128Gcm,
            Sha256,
        ),
        s(
            0x009d,
            "TLS_RSA_WITH_AES_256_GCM_SHA384",
            false,
            Aes256Gcm,
            Sha384,
        ),
        s(
            0x009e,
            "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
            false,
            Aes128Gcm,
            Sha256,
        ),
        s(
            0x009f,
            "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
            false,
            Aes256Gcm,
            Sha384,
        ),
        s(
            0xccac,
            "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
            false,
            ChaCha20Poly1305,
            Sha256,
        ),
    ]
};

impl Suite {
    pub fn by_id(id: u16) -> Option<Suite> {
        SUITES.iter().copied().find(|s| s.id == id)
    }

    /// Bytes a record adds around its plaintext: the tag, TLS 1.2 GCM's explicit nonce, TLS 1.3's
    /// inner content type (padding, rarely used, is not counted).
    pub fn overhead(self) -> usize {
        match (self.tls13, self.cipher) {
            (true, _) => TAG_LEN + 1,
            (false, Cipher::ChaCha20Poly1305) => TAG_LEN,
            (false, _) => TAG_LEN + 8,
        }
    }
}

/// The IANA name of a suite id, for suites that are only reported.
pub fn suite_name(id: u16) -> String {
    match Suite::by_id(id) {
        Some(s) => s.name.to_string(),
        None => format!("0x{id:04x}"),
    }
}

enum Aead {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

/// The keys of one direction in one epoch, and its record sequence number.
pub struct RecordKeys {
    aead: Aead,
    /// TLS 1.3 and ChaCha20 in TLS 1.2: the 12-byte IV XORed with the sequence number. TLS 1.2 GCM:
    /// the 4-byte salt, followed by the record's explicit nonce.
    iv: [u8; 12],
    pub tls13: bool,
    explicit_nonce: bool,
    pub seq: u64,
}

/// Why a record could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    TooShort,
    /// Authentication failed: wrong keys, wrong sequence number, or damaged bytes.
    Auth,
}

impl RecordKeys {
    fn new(cipher: Cipher, key: &[u8], iv: &[u8], tls13: bool) -> Option<RecordKeys> {
        let aead = match cipher {
            Cipher::Aes128Gcm => Aead::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            Cipher::Aes256Gcm => Aead::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            Cipher::ChaCha20Poly1305 => {
                Aead::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?))
            }
        };
        let mut fixed = [0u8; 12];
        let n = iv.len().min(12);
        fixed[..n].copy_from_slice(&iv[..n]);
        Some(RecordKeys {
            aead,
            iv: fixed,
            tls13,
            explicit_nonce: !tls13 && cipher != Cipher::ChaCha20Poly1305,
            seq: 0,
        })
    }

    /// TLS 1.3 keys from a traffic secret (RFC 8446 §7.3).
    pub fn tls13(suite: Suite, secret: &[u8]) -> Option<RecordKeys> {
        let key = expand_label(suite.hash, secret, b"key", suite.cipher.key_len())?;
        let iv = expand_label(suite.hash, secret, b"iv", 12)?;
        RecordKeys::new(suite.cipher, &key, &iv, true)
    }

    /// TLS 1.2 keys of both directions (client's, server's) from the master secret.
    pub fn tls12(
        suite: Suite,
        master: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> Option<(RecordKeys, RecordKeys)> {
        let key_len = suite.cipher.key_len();
        let iv_len = if suite.cipher == Cipher::ChaCha20Poly1305 {
            12
        } else {
            4
        };
        let mut seed = Vec::with_capacity(13 + 64);
        seed.extend_from_slice(b"key expansion");
        seed.extend_from_slice(server_random);
        seed.extend_from_slice(client_random);
        // AEAD suites have no MAC keys: client key, server key, client IV, server IV.
        let block = prf(suite.hash, master, &seed, 2 * (key_len + iv_len))?;
        let (ck, rest) = block.split_at(key_len);
        let (sk, rest) = rest.split_at(key_len);
        let (civ, siv) = rest.split_at(iv_len);
        Some((
            RecordKeys::new(suite.cipher, ck, civ, false)?,
            RecordKeys::new(suite.cipher, sk, siv, false)?,
        ))
    }

    /// Opens the record whose 5-byte header is `header` and whose body is `body` (decrypted in
    /// place) at sequence number `seq`. Returns the plaintext's range within `body`; for TLS 1.3
    /// that is the inner plaintext, content type and padding included.
    pub fn open_at(
        &self,
        seq: u64,
        header: [u8; 5],
        body: &mut [u8],
    ) -> Result<std::ops::Range<usize>, OpenError> {
        let skip = if self.explicit_nonce { 8 } else { 0 };
        if body.len() < skip + TAG_LEN {
            return Err(OpenError::TooShort);
        }
        let mut nonce = self.iv;
        if self.explicit_nonce {
            nonce[4..].copy_from_slice(&body[..8]);
        } else {
            for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
                *n ^= s;
            }
        }
        let plain_len = body.len() - skip - TAG_LEN;
        let mut aad = [0u8; 13];
        let aad: &[u8] = if self.tls13 {
            &header
        } else {
            aad[..8].copy_from_slice(&seq.to_be_bytes());
            aad[8..11].copy_from_slice(&header[..3]);
            aad[11..].copy_from_slice(&(plain_len as u16).to_be_bytes());
            &aad
        };
        let (text, tag) = body[skip..].split_at_mut(plain_len);
        let tag = GenericArray::from_slice(tag);
        let nonce = GenericArray::from_slice(&nonce);
        let ok = match &self.aead {
            Aead::Aes128(a) => a.decrypt_in_place_detached(nonce, aad, text, tag),
            Aead::Aes256(a) => a.decrypt_in_place_detached(nonce, aad, text, tag),
            Aead::ChaCha(a) => a.decrypt_in_place_detached(nonce, aad, text, tag),
        };
        match ok {
            Ok(()) => Ok(skip..skip + plain_len),
            Err(_) => Err(OpenError::Auth),
        }
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
pub fn expand_label(hash: Hash, secret: &[u8], label: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut info = Vec::with_capacity(4 + 6 + label.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(0);
    let mut out = vec![0u8; len];
    match hash {
        Hash::Sha256 => hkdf::Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
        Hash::Sha384 => hkdf::Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
    }
    Some(out)
}

/// The next TLS 1.3 traffic secret after a KeyUpdate (RFC 8446 §7.2).
pub fn next_secret(hash: Hash, secret: &[u8]) -> Option<Vec<u8>> {
    expand_label(hash, secret, b"traffic upd", hash.len())
}

/// The TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label + seed) with the suite's hash.
fn prf(hash: Hash, secret: &[u8], label_seed: &[u8], len: usize) -> Option<Vec<u8>> {
    match hash {
        Hash::Sha256 => p_hash::<Hmac<Sha256>>(secret, label_seed, len),
        Hash::Sha384 => p_hash::<Hmac<Sha384>>(secret, label_seed, len),
    }
}

fn p_hash<M: Mac + KeyInit + Clone>(secret: &[u8], seed: &[u8], len: usize) -> Option<Vec<u8>> {
    let keyed = <M as KeyInit>::new_from_slice(secret).ok()?;
    let mut out = Vec::with_capacity(len + 48);
    // A(1) = HMAC(secret, seed); A(i) = HMAC(secret, A(i-1)).
    let mut a = {
        let mut m = keyed.clone();
        m.update(seed);
        m.finalize().into_bytes().to_vec()
    };
    while out.len() < len {
        let mut m = keyed.clone();
        m.update(&a);
        m.update(seed);
        out.extend_from_slice(&m.finalize().into_bytes());
        let mut m = keyed.clone();
        m.update(&a);
        a = m.finalize().into_bytes().to_vec();
    }
    out.truncate(len);
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8448 §3: the traffic secrets' keys and IVs.
    #[test]
    fn rfc8448_traffic_keys() {
        let h = Hash::Sha256;
        let cases = [
            // server handshake, client handshake, server application, client application
            (
                "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
                "3fce516009c21727d0f2e4e86ee403bc",
                "5d313eb2671276ee13000b30",
            ),
            (
                "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
                "dbfaa693d1762c5b666af5d950258d01",
                "5bd3c71b836e0b76bb73265f",
            ),
            (
                "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
                "9f02283b6c9c07efc26bb9f2ac92e356",
                "cf782b88dd83549aadf1e984",
            ),
            (
                "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
                "17422dda596ed5d9acd890e3c63f5051",
                "5b78923dee08579033e523d9",
            ),
        ];
        for (secret, key, iv) in cases {
            let secret = hex(secret);
            assert_eq!(expand_label(h, &secret, b"key", 16).unwrap(), hex(key));
            assert_eq!(expand_label(h, &secret, b"iv", 12).unwrap(), hex(iv));
        }
    }

    /// RFC 8448 §3: the client's application data record opens to bytes 00..31.
    #[test]
    fn rfc8448_application_record() {
        let suite = Suite::by_id(0x1301).unwrap();
        let keys = RecordKeys::tls13(
            suite,
            &hex("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"),
        )
        .unwrap();
        let record = hex(
            "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4",
        );
        let header: [u8; 5] = record[..5].try_into().unwrap();
        let mut body = record[5..].to_vec();
        assert_eq!(
            keys.open_at(1, header, &mut body),
            Err(OpenError::Auth),
            "wrong sequence number (the failed attempt leaves the bytes as they were)"
        );
        let r = keys.open_at(0, header, &mut body).unwrap();
        let inner = &body[r];
        let expected: Vec<u8> = (0u8..0x32).chain([23]).collect();
        assert_eq!(inner, &expected[..]);
    }

    /// RFC 5246's PRF with SHA-256: the widely published test vector (IETF TLS WG, "TLS 1.2 PRF test
    /// vectors", used by NSS and OpenSSL tests).
    #[test]
    fn tls12_prf_sha256_vector() {
        let secret = hex("9bbe436ba940f017b17652849a71db35");
        let mut seed = b"test label".to_vec();
        seed.extend(hex("a0ba9f936cda311827a6f796ffd5198c"));
        let out = prf(Hash::Sha256, &secret, &seed, 100).unwrap();
        assert_eq!(
            out,
            hex("e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66")
        );
    }

    #[test]
    fn key_update_changes_secret() {
        let s = hex("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5");
        let n = next_secret(Hash::Sha256, &s).unwrap();
        assert_eq!(n.len(), 32);
        assert_ne!(n, s);
    }
}
