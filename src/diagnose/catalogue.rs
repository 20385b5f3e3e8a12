//! Facts about the world, as data: known intermediaries' idle timeouts and what they do at expiry,
//! gRPC stacks' keepalive policies, and fingerprints that recognise implementations from their
//! SETTINGS and PING payloads. The defaults live in `catalogue.json` (every value with its source);
//! `--timeouts FILE` adds entries or replaces those of the same name.

use serde::{Deserialize, Deserializer};
use std::sync::OnceLock;

const DEFAULT: &str = include_str!("catalogue.json");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// No packets at all (PINGs reset it): NATs, conntrack, L4 load balancers.
    Transport,
    /// No open streams (PINGs do not reset it): L7 proxies, MaxConnectionIdle.
    Stream,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    Reset,
    Drop,
    ResetBoth,
    Fin,
    Goaway,
}

impl OnExpiry {
    pub fn name(self) -> &'static str {
        match self {
            OnExpiry::Reset => "reset",
            OnExpiry::Drop => "drop",
            OnExpiry::ResetBoth => "reset_both",
            OnExpiry::Fin => "fin",
            OnExpiry::Goaway => "goaway",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Intermediary {
    pub name: String,
    pub kind: String,
    pub timeout_s: Option<f64>,
    #[serde(default)]
    pub configurable: Option<(f64, f64)>,
    pub measure: Measure,
    pub on_expiry: OnExpiry,
    pub counts_pings: bool,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub notes: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GoawayShape {
    pub error_code: String,
    pub debug_data: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GrpcServer {
    pub name: String,
    pub min_ping_interval_s: Option<f64>,
    pub min_ping_interval_without_calls_s: Option<f64>,
    #[serde(default)]
    pub permit_without_calls_default: bool,
    pub max_ping_strikes: Option<u32>,
    #[serde(default)]
    pub client_keepalive_default_s: Option<f64>,
    #[serde(default)]
    pub client_keepalive_min_s: Option<f64>,
    #[serde(default)]
    pub keepalive_timeout_default_s: Option<f64>,
    #[serde(default)]
    pub max_connection_idle_goaway: Option<GoawayShape>,
    #[serde(default)]
    pub max_connection_age_goaway: Option<GoawayShape>,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub notes: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Fingerprint {
    pub implementation: String,
    pub role: FingerprintRole,
    #[serde(default)]
    pub settings: Option<Vec<(u16, u32)>>,
    #[serde(default)]
    pub settings_ids_include: Option<Vec<u16>>,
    #[serde(default)]
    pub ping_opaque: Option<PingOpaque>,
    #[serde(default)]
    pub ping_purpose: Option<String>,
    #[serde(default)]
    pub is_proxy: bool,
    #[serde(default)]
    pub source: String,
}

/// The side a fingerprint recognises, as the catalogue writes it: "client", "server" or "any".
/// Any other word is kept and matches no side. Judging asks it of every fingerprint for every
/// connection, so it is read once, not compared as text each time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FingerprintRole {
    Client,
    Server,
    Any,
    Other(String),
}

impl FingerprintRole {
    /// Whether it recognises the side `client` (else the server side).
    fn fits(&self, client: bool) -> bool {
        match self {
            FingerprintRole::Any => true,
            FingerprintRole::Client => client,
            FingerprintRole::Server => !client,
            FingerprintRole::Other(_) => false,
        }
    }
}

impl<'de> Deserialize<'de> for FingerprintRole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        Ok(match word.as_str() {
            "client" => FingerprintRole::Client,
            "server" => FingerprintRole::Server,
            "any" => FingerprintRole::Any,
            _ => FingerprintRole::Other(word),
        })
    }
}

/// A fixed PING payload as the catalogue writes it (lowercase hex), and the eight bytes it stands
/// for when it is the hex of eight bytes, as [`super::hex`] writes them: only such a payload can
/// match a PING. Every PING of every connection is looked up, so the text is read once, when the
/// catalogue is, not for each PING.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingOpaque {
    pub text: String,
    bytes: Option<[u8; 8]>,
}

impl PingOpaque {
    pub fn new(text: String) -> PingOpaque {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let bytes = <&[u8; 16]>::try_from(text.as_bytes())
            .ok()
            .and_then(|pairs| {
                let mut bytes = [0u8; 8];
                for (b, pair) in bytes.iter_mut().zip(pairs.chunks_exact(2)) {
                    *b = digit(pair[0])? << 4 | digit(pair[1])?;
                }
                Some(bytes)
            });
        PingOpaque { text, bytes }
    }

    /// Whether `opaque` is the payload it names.
    pub fn matches(&self, opaque: &[u8; 8]) -> bool {
        self.bytes.as_ref() == Some(opaque)
    }
}

impl<'de> Deserialize<'de> for PingOpaque {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(PingOpaque::new)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Catalogue {
    #[serde(default)]
    pub intermediaries: Vec<Intermediary>,
    #[serde(default)]
    pub grpc_servers: Vec<GrpcServer>,
    #[serde(default)]
    pub fingerprints: Vec<Fingerprint>,
    /// The fingerprints with a PING payload: its bytes, and where the fingerprint is, in
    /// catalogue order. Every PING of every connection is looked up, and this is a short list
    /// of small entries, where the fingerprints are three dozen large ones. Made from
    /// `fingerprints` when first read; [`Catalogue::merge`] makes it anew.
    #[serde(skip)]
    payloads: OnceLock<Vec<([u8; 8], usize)>>,
}

impl Catalogue {
    /// The catalogue shipped in the binary.
    pub fn builtin() -> Catalogue {
        // The embedded file is checked by a unit test; an error here would be a build defect, so it
        // degrades to an empty catalogue rather than a panic.
        serde_json::from_str(DEFAULT).unwrap_or_default()
    }

    /// The built-in catalogue with a user's file merged in: entries with a known name replace the
    /// built-in ones, others are added.
    pub fn with_user_file(path: &str) -> Result<Catalogue, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{path}: cannot read: {e}"))?;
        let user: Catalogue = serde_json::from_str(&text)
            .map_err(|e| format!("{path}: not a timeouts catalogue: {e}"))?;
        let mut cat = Catalogue::builtin();
        cat.merge(user);
        Ok(cat)
    }

    pub fn merge(&mut self, other: Catalogue) {
        for e in other.intermediaries {
            self.intermediaries.retain(|x| x.name != e.name);
            self.intermediaries.push(e);
        }
        for e in other.grpc_servers {
            self.grpc_servers.retain(|x| x.name != e.name);
            self.grpc_servers.push(e);
        }
        self.fingerprints.extend(other.fingerprints);
        self.payloads = OnceLock::new();
    }

    /// The fingerprints with a PING payload ([`Catalogue::payloads`]).
    fn payloads(&self) -> impl Iterator<Item = (&[u8; 8], &Fingerprint)> {
        let payloads = self.payloads.get_or_init(|| {
            let bytes = |f: &Fingerprint| f.ping_opaque.as_ref().and_then(|o| o.bytes);
            self.fingerprints
                .iter()
                .enumerate()
                .filter_map(|(i, f)| Some((bytes(f)?, i)))
                .collect()
        });
        payloads
            .iter()
            .filter_map(|(bytes, i)| Some((bytes, self.fingerprints.get(*i)?)))
    }

    /// The implementation whose SETTINGS (first, non-ACK) or PING payload matches, and whether it is
    /// a proxy, on the client side when `client`, else on the server side; `sent` says whether
    /// that side sent a PING with a payload.
    pub fn recognise(
        &self,
        client: bool,
        settings: Option<&[(u16, u32)]>,
        sent: impl Fn(&[u8; 8]) -> bool,
    ) -> Option<&Fingerprint> {
        let role_ok = |f: &Fingerprint| f.role.fits(client);
        let exact = self.fingerprints.iter().filter(|f| role_ok(f)).find(|f| {
            match (&f.settings, settings) {
                (Some(want), Some(got)) => want.as_slice() == got,
                _ => false,
            }
        });
        let by_ids = || {
            self.fingerprints.iter().filter(|f| role_ok(f)).find(|f| {
                match (&f.settings_ids_include, settings) {
                    (Some(ids), Some(got)) => {
                        !ids.is_empty() && ids.iter().all(|id| got.iter().any(|(g, _)| g == id))
                    }
                    _ => false,
                }
            })
        };
        let by_ping = || {
            self.payloads()
                .find(|(bytes, f)| role_ok(f) && sent(bytes))
                .map(|(_, f)| f)
        };
        exact.or_else(by_ids).or_else(by_ping)
    }

    /// What a fixed PING payload is for, when it is a known one ("bdp", "keepalive", ...).
    pub fn ping_purpose(&self, opaque: &[u8; 8]) -> Option<(&str, &str)> {
        self.payloads()
            .filter(|(bytes, _)| *bytes == opaque)
            .find_map(|(_, f)| Some((f.implementation.as_str(), f.ping_purpose.as_deref()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_parses_and_every_entry_has_a_source() {
        let cat: Catalogue = serde_json::from_str(DEFAULT).expect("catalogue.json must parse");
        assert!(
            cat.intermediaries.len() >= 15,
            "{}",
            cat.intermediaries.len()
        );
        for e in &cat.intermediaries {
            assert!(!e.sources.is_empty(), "{} has no source", e.name);
        }
        for e in &cat.grpc_servers {
            assert!(!e.sources.is_empty(), "{} has no source", e.name);
        }
        for name in ["AWS NLB", "AWS NAT Gateway", "GCP Cloud NAT"] {
            assert!(
                cat.intermediaries.iter().any(|e| e.name.starts_with(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn ping_payloads_match_as_their_hex_text_would() {
        let mut next = crate::testing::xorshift(0x6f70_6171_7565_0008);
        let payloads: Vec<[u8; 8]> = [[0; 8], [0xff; 8], *b"\x02\x04\x10\x10\x09\x0e\x07\x07"]
            .into_iter()
            .chain((0..2000).map(|_| next().to_le_bytes()))
            .collect();
        for p in &payloads {
            let text = super::super::hex(p);
            let mut upper = text.to_uppercase();
            if upper == text {
                upper.push('0');
            }
            for candidate in [
                text.clone(),
                upper,
                text[..15].to_string(),
                format!("{text}00"),
            ] {
                let o = PingOpaque::new(candidate.clone());
                for q in [p, &payloads[0], &payloads[1]] {
                    assert_eq!(
                        o.matches(q),
                        candidate == super::super::hex(q),
                        "{candidate} {q:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn payloads_are_looked_up_as_every_fingerprint_would_be() {
        // Every fingerprint looked at in turn, as before the list of payloads.
        fn purpose<'a>(cat: &'a Catalogue, opaque: &[u8; 8]) -> Option<(&'a str, &'a str)> {
            cat.fingerprints.iter().find_map(|f| {
                let purpose = f.ping_purpose.as_deref()?;
                let text = &f.ping_opaque.as_ref()?.text;
                (*text == super::super::hex(opaque)).then_some((f.implementation.as_str(), purpose))
            })
        }
        fn by_ping<'a>(cat: &'a Catalogue, client: bool, opaque: &[u8; 8]) -> Option<&'a str> {
            let f = cat.fingerprints.iter().find(|f| {
                f.role.fits(client)
                    && f.ping_opaque
                        .as_ref()
                        .is_some_and(|o| o.text == super::super::hex(opaque))
            })?;
            Some(f.implementation.as_str())
        }
        let mut cat = Catalogue::builtin();
        let user: Catalogue = serde_json::from_str(
            r#"{"fingerprints": [
                {"implementation": "ours", "role": "client", "ping_opaque": "0102030405060708", "ping_purpose": "keepalive"},
                {"implementation": "theirs", "role": "server", "ping_opaque": "3b7cdb7a0b8716b4"}
            ]}"#,
        )
        .unwrap();
        let mut payloads: Vec<[u8; 8]> = vec![[0; 8], [1, 2, 3, 4, 5, 6, 7, 8]];
        for f in &cat.fingerprints {
            if let Some(b) = f.ping_opaque.as_ref().and_then(|o| o.bytes) {
                payloads.push(b);
            }
        }
        for round in 0..2 {
            for p in &payloads {
                assert_eq!(cat.ping_purpose(p), purpose(&cat, p), "{round} {p:?}");
                for client in [true, false] {
                    let found = cat.recognise(client, None, |o| o == p);
                    assert_eq!(
                        found.map(|f| f.implementation.as_str()),
                        by_ping(&cat, client, p),
                        "{round} {p:?}"
                    );
                }
            }
            // The list is made anew with the user's fingerprints.
            cat.merge(user.clone());
        }
        assert_eq!(
            cat.ping_purpose(&[1, 2, 3, 4, 5, 6, 7, 8]),
            Some(("ours", "keepalive"))
        );
    }

    #[test]
    fn fingerprint_roles_are_read_as_words() {
        let roles: Vec<FingerprintRole> =
            serde_json::from_str(r#"["client", "server", "any", "Client", ""]"#).unwrap();
        assert_eq!(
            roles,
            [
                FingerprintRole::Client,
                FingerprintRole::Server,
                FingerprintRole::Any,
                FingerprintRole::Other("Client".into()),
                FingerprintRole::Other(String::new()),
            ]
        );
        assert!(roles[2].fits(true) && roles[2].fits(false));
        assert!(roles[0].fits(true) && !roles[0].fits(false));
        assert!(!roles[1].fits(true) && roles[1].fits(false));
        assert!(!roles[3].fits(true) && !roles[3].fits(false));
    }

    #[test]
    fn user_entries_replace_and_add() {
        let mut cat = Catalogue::builtin();
        let n = cat.intermediaries.len();
        let user: Catalogue = serde_json::from_str(
            r#"{"intermediaries": [
                {"name": "AWS NLB", "kind": "load_balancer", "timeout_s": 120, "measure": "transport", "on_expiry": "reset", "counts_pings": true, "sources": ["our terraform"]},
                {"name": "corp firewall", "kind": "firewall", "timeout_s": 900, "measure": "transport", "on_expiry": "drop", "counts_pings": true, "sources": ["netops wiki"]}
            ]}"#,
        )
        .unwrap();
        cat.merge(user);
        assert_eq!(cat.intermediaries.len(), n + 1);
        let nlb = cat
            .intermediaries
            .iter()
            .find(|e| e.name == "AWS NLB")
            .unwrap();
        assert_eq!(nlb.timeout_s, Some(120.0));
    }
}
