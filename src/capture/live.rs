//! A live interface through libpcap (the `pcap` crate): immediate mode, nanosecond timestamps where
//! the kernel gives them, promiscuous only when asked, SLL2 on `any`, a BPF filter, and `-w` to keep
//! what was captured as a pcap file. Non-blocking reads polled by the caller: measured with pcap 2.5,
//! a blocking `next_packet()` hung once traffic stopped, even with a read timeout, which would make
//! `--duration` and signals wait for the next packet.

use super::{LinkType, Packet, Ts};
use pcap::{Active, Capture, Device, Linktype, Precision, Savefile};
use std::fmt;

/// The kernel's capture buffer: a burst must fit while the analysis is busy.
const BUFFER_BYTES: i32 = 32 << 20;

#[derive(Clone, Debug)]
pub struct Options {
    pub iface: String,
    pub filter: Option<String>,
    pub snaplen: i32,
    pub promisc: bool,
    /// `-w`: save every captured packet here as pcap.
    pub save: Option<String>,
}

#[derive(Debug)]
pub enum LiveError {
    /// No permission to capture.
    Permission(String),
    /// The interface does not exist; the ones that do.
    NoSuchInterface(String, Vec<String>),
    Filter(String, String),
    Other(String),
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::Permission(iface) => write!(
                f,
                "{iface}: no permission to capture: run as root, or grant the capability with `setcap cap_net_raw,cap_net_admin=eip $(command -v h2keepalive)` (in Kubernetes: securityContext.capabilities.add [NET_RAW, NET_ADMIN])"
            ),
            LiveError::NoSuchInterface(iface, available) => {
                write!(f, "{iface}: no such interface; available: {}", available.join(", "))
            }
            LiveError::Filter(filter, why) => write!(f, "capture filter '{filter}' is not valid: {why}"),
            LiveError::Other(why) => f.write_str(why),
        }
    }
}

/// Capture statistics from libpcap.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub received: u32,
    pub kernel_dropped: u32,
    pub interface_dropped: u32,
}

pub struct Live {
    cap: Capture<Active>,
    link: LinkType,
    nanos: bool,
    save: Option<Savefile>,
    iface: String,
}

fn interfaces() -> Vec<String> {
    Device::list()
        .map(|d| d.into_iter().map(|d| d.name).collect())
        .unwrap_or_default()
}

fn classify(iface: &str, e: pcap::Error) -> LiveError {
    let text = e.to_string();
    let lower = text.to_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        LiveError::Permission(iface.to_string())
    } else if lower.contains("no such device")
        || lower.contains("doesn't exist")
        || lower.contains("does not exist")
    {
        LiveError::NoSuchInterface(iface.to_string(), interfaces())
    } else {
        LiveError::Other(format!("{iface}: {text}"))
    }
}

impl Live {
    pub fn open(opts: &Options) -> Result<Live, LiveError> {
        let iface = opts.iface.as_str();
        let inactive = Capture::from_device(iface).map_err(|e| classify(iface, e))?;
        let prepared = inactive
            .promisc(opts.promisc)
            .snaplen(opts.snaplen)
            .immediate_mode(true)
            .timeout(100)
            .buffer_size(BUFFER_BYTES);
        // Nanosecond timestamps where the kernel offers them, else microseconds.
        let (cap, nanos) = match prepared.precision(Precision::Nano).open() {
            Ok(c) => (c, true),
            Err(_) => {
                let inactive = Capture::from_device(iface).map_err(|e| classify(iface, e))?;
                let c = inactive
                    .promisc(opts.promisc)
                    .snaplen(opts.snaplen)
                    .immediate_mode(true)
                    .timeout(100)
                    .buffer_size(BUFFER_BYTES)
                    .open()
                    .map_err(|e| classify(iface, e))?;
                (c, false)
            }
        };
        let mut cap = cap;
        // `any` gives Linux cooked v1 by default; v2 carries the interface index too.
        if iface == "any" {
            let _ = cap.set_datalink(Linktype(276));
        }
        if let Some(f) = &opts.filter {
            cap.filter(f, true)
                .map_err(|e| LiveError::Filter(f.clone(), e.to_string()))?;
        }
        let mut cap = cap.setnonblock().map_err(|e| classify(iface, e))?;
        let link = LinkType::from_number(cap.get_datalink().0);
        let save = match &opts.save {
            Some(path) => Some(
                cap.savefile(path)
                    .map_err(|e| LiveError::Other(format!("{path}: cannot write: {e}")))?,
            ),
            None => None,
        };
        let _ = cap.stats();
        Ok(Live {
            cap,
            link,
            nanos,
            save,
            iface: iface.to_string(),
        })
    }

    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The next packet if one is waiting; `Ok(None)` when none is (poll again later).
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, String> {
        match self.cap.next_packet() {
            Ok(p) => {
                if let Some(s) = &mut self.save {
                    s.write(&p);
                }
                let h = p.header;
                let frac = if self.nanos {
                    h.ts.tv_usec as i64
                } else {
                    h.ts.tv_usec as i64 * 1000
                };
                Ok(Some(Packet {
                    ts: Ts::from_parts(h.ts.tv_sec as i64, frac),
                    link: self.link,
                    data: p.data,
                    orig_len: h.len,
                }))
            }
            Err(pcap::Error::TimeoutExpired) | Err(pcap::Error::NoMorePackets) => Ok(None),
            Err(e) => Err(format!("{}: capture failed: {e}", self.iface)),
        }
    }

    pub fn stats(&mut self) -> Stats {
        self.cap
            .stats()
            .map(|s| Stats {
                received: s.received,
                kernel_dropped: s.dropped,
                interface_dropped: s.if_dropped,
            })
            .unwrap_or_default()
    }

    /// Flushes the `-w` file.
    pub fn finish(&mut self) -> Result<(), String> {
        match &mut self.save {
            Some(s) => s
                .flush()
                .map_err(|e| format!("cannot flush the saved capture: {e}")),
            None => Ok(()),
        }
    }
}
