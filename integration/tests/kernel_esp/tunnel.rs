//! Tunnel-mode ESP between two hosts (RFC 4301 section 4.1), as Libreswan's shipped
//! opportunistic configurations negotiate it: outer addresses are the hosts', the inner
//! source is a virtual address the server assigned (or the host's own), with and without
//! UDP encapsulation. Only ESP may appear on the wire, and never the inner address.

use oe_kernel::Mode;

use super::*;

/// One test's addresses.
struct Plan {
    /// Outer addresses: `a`, `b`.
    a: &'static str,
    b: &'static str,
    /// The inner source on `a`: a virtual address, or `a` itself.
    inner_a: &'static str,
    encap: bool,
}

const SPI_AB: Spi = Spi(0x0f00_0001);
const SPI_BA: Spi = Spi(0x0f00_0002);

impl Plan {
    fn inner(&self) -> TrafficSelector {
        TrafficSelector::hosts(ip(self.inner_a), ip(self.b)).unwrap()
    }

    fn sa(&self, src: &str, dst: &str, spi: Spi, selector: TrafficSelector) -> SaSpec {
        let mut spec = sa(src, dst, spi, AlgorithmKind::AesGcm128, reqid(50));
        spec.selector = Some(selector);
        spec.encap = self.encap.then_some(UdpEncap {
            src_port: 4500,
            dst_port: 4500,
            mapping_threshold: None,
        });
        spec
    }

    /// One end: its outbound and inbound tunnel SAs and the tunnel policy pair.
    fn install(&self, ns: &Netns, local: &'static str, peer: &'static str, out: Spi, inb: Spi) {
        let inner = if local == self.a {
            self.inner()
        } else {
            self.inner().reversed()
        };
        let (out_sa, in_sa) = (
            self.sa(local, peer, out, inner),
            self.sa(peer, local, inb, inner.reversed()),
        );
        kernel(ns, |mut x| async move {
            x.add_sa_in(Mode::Tunnel, &out_sa).await.unwrap();
            x.add_sa_in(Mode::Tunnel, &in_sa).await.unwrap();
            let policies = PolicySpec::host_tunnel_pair(inner, ip(local), ip(peer), reqid(50));
            for policy in policies.unwrap() {
                x.add_policy(&policy).await.unwrap();
            }
            let installed = x.get_sa(out_sa.id()).await.unwrap();
            assert_eq!(installed.mode(), Some(Mode::Tunnel));
        });
    }
}

/// A UDP socket on port 4500 that decapsulates ESP-in-UDP (RFC 3948), as the agent's is.
fn nat_t_socket(ns: &Netns, addr: &str) -> UdpSocket {
    ns.run(|| {
        let socket = UdpSocket::bind((ip(addr), 4500)).unwrap();
        oe_kernel::socket::bypass_ipsec(&socket).unwrap();
        oe_kernel::socket::enable_udp_encap(&socket).unwrap();
        socket
    })
}

/// The virtual address on `a`'s loopback, used as the source towards `b`; `b` routes it
/// back over the link (the tunnel policy then carries it).
fn virtual_address(pair: &Pair, plan: &Plan) {
    let (host, len) = if plan.b.contains(':') {
        ("-6", "128")
    } else {
        ("-4", "32")
    };
    pair.a.ip(&[
        "addr",
        "add",
        &format!("{}/{len}", plan.inner_a),
        "dev",
        "lo",
    ]);
    let b = format!("{}/{len}", plan.b);
    pair.a.ip(&[
        host,
        "route",
        "add",
        &b,
        "dev",
        &pair.a_if,
        "src",
        plan.inner_a,
    ]);
    let v = format!("{}/{len}", plan.inner_a);
    pair.b.ip(&[host, "route", "add", &v, "dev", &pair.b_if]);
}

/// A datagram from `a`'s inner address to `b` and the answer back; returns what `b` saw
/// as the sender.
fn exchange(pair: &Pair, plan: &Plan) -> IpAddr {
    let server = pair.b.run(|| UdpSocket::bind((ip(plan.b), 5000)).unwrap());
    server.set_read_timeout(Some(WAIT)).unwrap();
    let client = pair
        .a
        .run(|| UdpSocket::bind((ip(plan.inner_a), 0)).unwrap());
    client.set_read_timeout(Some(WAIT)).unwrap();
    client
        .send_to(b"inner question", (ip(plan.b), 5000))
        .unwrap();
    let mut buf = [0; 64];
    let (n, from) = server.recv_from(&mut buf).expect("the question arrives");
    assert_eq!(&buf[..n], b"inner question");
    server.send_to(b"inner answer", from).unwrap();
    let (n, _) = client.recv_from(&mut buf).expect("the answer arrives");
    assert_eq!(&buf[..n], b"inner answer");
    from.ip()
}

fn tunnel_round_trip(plan: &Plan) {
    let pair = Pair::new();
    if plan.inner_a != plan.a {
        virtual_address(&pair, plan);
    }
    plan.install(&pair.a, plan.a, plan.b, SPI_AB, SPI_BA);
    plan.install(&pair.b, plan.b, plan.a, SPI_BA, SPI_AB);
    let _sockets = plan
        .encap
        .then(|| (nat_t_socket(&pair.a, plan.a), nat_t_socket(&pair.b, plan.b)));

    let (from_a, from_b) = (
        Capture::start_outgoing(&pair.a, &pair.a_if),
        Capture::start_outgoing(&pair.b, &pair.b_if),
    );
    let sender = exchange(&pair, plan);
    let mut packets = from_a.stop();
    packets.extend(from_b.stop());
    assert_eq!(sender, ip(plan.inner_a), "b saw another source");
    let inner_seen: Vec<_> = packets
        .iter()
        .filter(|p| p.src == ip(plan.inner_a) || p.dst == ip(plan.inner_a))
        .collect();
    if plan.inner_a != plan.a {
        assert!(
            inner_seen.is_empty(),
            "inner address on the wire: {inner_seen:?}"
        );
    }
    // Only ESP between the hosts, besides neighbour discovery (ICMPv6, in clear).
    let seen = between(&packets, plan.a, plan.b);
    let clear: Vec<_> = seen.iter().filter(|p| p.is_cleartext_payload()).collect();
    assert!(clear.is_empty(), "cleartext on the wire: {clear:?}");
    let spis: Vec<_> = seen
        .iter()
        .filter_map(|p| match p.kind {
            Kind::Esp { spi } => Some(spi),
            _ => None,
        })
        .collect();
    assert!(
        spis.contains(&SPI_AB.0) && spis.contains(&SPI_BA.0),
        "{seen:?}"
    );
    let counted = kernel(&pair.a, |mut x| async move {
        x.get_sa(SaId::esp(ip(plan.b), SPI_AB)).await.unwrap()
    });
    assert_eq!(counted.current.packets, 1);
    assert_eq!(counted.encap.is_some(), plan.encap);
}

#[test]
fn tunnel_v4_virtual_source() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("tunnel::tunnel_v4_virtual_source");
    }
    tunnel_round_trip(&Plan {
        a: Pair::A4,
        b: Pair::B4,
        inner_a: "198.51.100.7",
        encap: false,
    });
}

#[test]
fn tunnel_v4_virtual_source_udp_encapsulated() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("tunnel::tunnel_v4_virtual_source_udp_encapsulated");
    }
    tunnel_round_trip(&Plan {
        a: Pair::A4,
        b: Pair::B4,
        inner_a: "198.51.100.7",
        encap: true,
    });
}

#[test]
fn tunnel_v6_host_to_host_and_virtual_source() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("tunnel::tunnel_v6_host_to_host_and_virtual_source");
    }
    for inner_a in [Pair::A6, "2001:db8:ffff::7"] {
        tunnel_round_trip(&Plan {
            a: Pair::A6,
            b: Pair::B6,
            inner_a,
            encap: false,
        });
    }
}
