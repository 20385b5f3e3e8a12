//! Recommendations: concrete settings for the side that must change, as snippets for the stack
//! that was recognised, or a generic set.

use super::catalogue::{Catalogue, Measure};
use super::Cause;

/// The shortest client keepalive time gRPC stacks accept (grpc-go and grpc-java clamp to 10 s).
const KEEPALIVE_FLOOR_S: f64 = 10.0;

/// A client keepalive time comfortably below a timeout: half of it for short timeouts, 30 s under
/// it for long ones.
fn keepalive_below(timeout_s: f64) -> f64 {
    if timeout_s > 60.0 {
        (timeout_s - 30.0).floor()
    } else {
        (timeout_s / 2.0).floor()
    }
}

fn client_snippet(stack: &Option<String>, time_s: f64) -> String {
    let ms = (time_s * 1000.0) as u64;
    let s = time_s as u64;
    let stack = stack.as_deref().unwrap_or("").to_lowercase();
    if stack.contains("go") {
        format!("grpc-go client: grpc.WithKeepaliveParams(keepalive.ClientParameters{{Time: {s} * time.Second, Timeout: 20 * time.Second, PermitWithoutStream: true}})")
    } else if stack.contains("java") {
        format!("grpc-java client: ManagedChannelBuilder...keepAliveTime({s}, SECONDS).keepAliveTimeout(20, SECONDS).keepAliveWithoutCalls(true)")
    } else if stack.contains("js") || stack.contains("node") {
        format!("grpc-js client: {{'grpc.keepalive_time_ms': {ms}, 'grpc.keepalive_timeout_ms': 20000, 'grpc.keepalive_permit_without_calls': 1}}")
    } else if stack.contains("c-core") || stack.contains("python") {
        format!("gRPC C-core client (Python, C++): options=[('grpc.keepalive_time_ms', {ms}), ('grpc.keepalive_timeout_ms', 20000), ('grpc.keepalive_permit_without_calls', 1), ('grpc.http2.max_pings_without_data', 0)]")
    } else {
        format!(
            "client keepalive every {s} s with permit-without-calls: grpc-go keepalive.ClientParameters{{Time: {s}s, PermitWithoutStream: true}}; grpc-java keepAliveTime({s}, SECONDS).keepAliveWithoutCalls(true); C-core grpc.keepalive_time_ms={ms}, grpc.keepalive_permit_without_calls=1; grpc-js 'grpc.keepalive_time_ms': {ms}"
        )
    }
}

fn server_snippet(stack: &Option<String>, min_s: f64) -> String {
    let ms = (min_s * 1000.0) as u64;
    let s = min_s as u64;
    let stack = stack.as_deref().unwrap_or("").to_lowercase();
    if stack.contains("go") {
        format!("grpc-go server: grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{{MinTime: {s} * time.Second, PermitWithoutStream: true}})")
    } else if stack.contains("java") {
        format!("grpc-java server: NettyServerBuilder...permitKeepAliveTime({s}, SECONDS).permitKeepAliveWithoutCalls(true)")
    } else if stack.contains("c-core") || stack.contains("python") {
        format!("gRPC C-core server: ('grpc.http2.min_recv_ping_interval_without_data_ms', {ms}), ('grpc.keepalive_permit_without_calls', 1), ('grpc.http2.max_ping_strikes', 2)")
    } else {
        format!(
            "server ping enforcement allowing one PING per {s} s without calls: grpc-go EnforcementPolicy{{MinTime: {s}s, PermitWithoutStream: true}}; grpc-java permitKeepAliveTime({s}, SECONDS).permitKeepAliveWithoutCalls(true); C-core grpc.http2.min_recv_ping_interval_without_data_ms={ms}, grpc.keepalive_permit_without_calls=1"
        )
    }
}

pub fn idle(
    cause: Cause,
    measure: Measure,
    (low, high): (f64, f64),
    pings_flowed: bool,
    by_server: bool,
    client: &Option<String>,
    server: &Option<String>,
) -> String {
    match (cause, measure) {
        (Cause::IdleGoaway, _) if by_server => format!(
            "The server's MaxConnectionIdle (~{:.0} s) is closing idle connections by design; clients reconnect on the next RPC. If that first RPC must not pay for a new connection, raise MaxConnectionIdle on the server, or keep one RPC in flight (PINGs do not count as activity).",
            high
        ),
        (Cause::IdleGoaway, _) | (_, Measure::Stream) => format!(
            "An L7 proxy closes connections idle for ~{:.0} s and {} count PINGs as activity, so client keepalives cannot hold the connection. Either raise the proxy's idle timeout above your longest quiet period (nginx: keepalive_timeout / http2_idle_timeout; AWS ALB: idle_timeout.timeout_seconds; Envoy: common_http_protocol_options.idle_timeout), or let the client close first: an idle timeout on the channel below ~{:.0} s (grpc-go grpc.WithIdleTimeout; C-core grpc.client_idle_timeout_ms; grpc-java idleTimeout) or the server's MaxConnectionIdle below it. Server side: {}.",
            high,
            if pings_flowed { "does not" } else { "may not" },
            (low.max(high * 0.8)).floor(),
            server.as_deref().unwrap_or("unrecognised")
        ),
        _ => {
            // Below the longest silence survived, the timer certainly has not fired.
            let safe = if low > 0.0 { low } else { high };
            let ka = keepalive_below(safe);
            if ka < KEEPALIVE_FLOOR_S {
                return format!(
                    "The idle timeout on the path (between {low:.1} and {high:.1} s) is shorter than the shortest keepalive gRPC clients allow ({KEEPALIVE_FLOOR_S:.0} s): raise the intermediary's idle timeout well above your longest quiet period (AWS NLB: tcp.idle_timeout.seconds; conntrack: net.netfilter.nf_conntrack_tcp_timeout_established; HAProxy: timeout client/server), then keep connections alive with PINGs below it."
                );
            }
            format!(
                "Keep the connection busier than the idle timeout on the path (more than {low:.0} s, at most {high:.0} s): send HTTP/2 PINGs every {ka:.0} s, also without active calls, and let the server accept that rate. {}. {}. Or raise the intermediary's idle timeout (AWS NLB: tcp.idle_timeout.seconds; conntrack: net.netfilter.nf_conntrack_tcp_timeout_established).",
                client_snippet(client, ka),
                server_snippet(server, (ka * 0.8).floor().max(KEEPALIVE_FLOOR_S.min(ka)))
            )
        }
    }
}

pub fn too_many_pings(
    interval: Option<f64>,
    client: &Option<String>,
    server: &Option<String>,
    cat: &Catalogue,
) -> String {
    let policy = server.as_deref().and_then(|s| {
        let s = s.to_lowercase();
        cat.grpc_servers.iter().find(|g| {
            let n = g.name.to_lowercase();
            s.contains(&n) || n.contains(&s)
        })
    });
    let min = policy.and_then(|p| p.min_ping_interval_s).unwrap_or(300.0);
    let seen = interval.map_or(String::new(), |i| {
        format!("The client pings every {i:.1} s; ")
    });
    format!(
        "{seen}the server's ping enforcement allows one PING per {min:.0} s (two strikes, then GOAWAY). Either slow the client down ({}) or let the server accept the rate ({}).",
        client_snippet(client, min),
        server_snippet(server, interval.map_or(min, |i| (i * 0.9).floor().max(1.0)))
    )
}

pub fn max_age(failed: bool) -> String {
    if failed {
        "MaxConnectionAge rotates connections by design, but RPCs failed around it: give MaxConnectionAgeGrace enough time for the longest RPC, and let clients retry UNAVAILABLE (transparent retry covers streams above the GOAWAY's last-stream-id). Behind a proxy, keep the proxy's keepalive_timeout below the server's MaxConnectionAge.".to_string()
    } else {
        "Nothing to change: MaxConnectionAge rotates connections by design and in-flight RPCs finished within the grace period.".to_string()
    }
}
