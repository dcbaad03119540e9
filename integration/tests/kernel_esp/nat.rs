//! Following a NAT rebinding: the peer's UDP-encapsulated ESP arrives from a new source
//! port (its NAT's old binding is gone), the kernel reports a MAPPING, and the SA pair is
//! updated in place (`Xfrm::follow_mapping`) so that replies reach the new binding, with
//! the same SAs (sequence numbers go on).

use super::*;

const SPI_AB: Spi = Spi(0x0e10_0001);
const SPI_BA: Spi = Spi(0x0e10_0002);

fn encapsulated(src: &str, dst: &str, spi: Spi, ports: (u16, u16)) -> SaSpec {
    let mut spec = sa(src, dst, spi, AlgorithmKind::AesGcm128, reqid(60));
    spec.encap = Some(UdpEncap {
        src_port: ports.0,
        dst_port: ports.1,
        mapping_threshold: None,
    });
    spec
}

/// A UDP socket that decapsulates ESP-in-UDP (RFC 3948), as the agent's NAT-T socket does.
fn nat_t(addr: &str, port: u16) -> UdpSocket {
    let socket = UdpSocket::bind((ip(addr), port)).unwrap();
    oe_kernel::socket::bypass_ipsec(&socket).unwrap();
    oe_kernel::socket::enable_udp_encap(&socket).unwrap();
    socket
}

async fn install(x: &mut Xfrm, out: SaSpec, inb: SaSpec) {
    x.add_sa(&out).await.unwrap();
    x.add_sa(&inb).await.unwrap();
    for policy in PolicySpec::host_sa_pair(out.src, out.dst, reqid(60)).unwrap() {
        x.add_policy(&policy).await.unwrap();
    }
}

/// A datagram from `a` to `b`'s server and the answer back; whether the answer arrived.
fn round_trip(pair: &Pair, server: &UdpSocket) -> bool {
    let client = pair.a.run(|| UdpSocket::bind((ip(Pair::A4), 0)).unwrap());
    client
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    client.send_to(b"question", (ip(Pair::B4), 5000)).unwrap();
    let mut buf = [0; 64];
    let (_, from) = server.recv_from(&mut buf).expect("the question arrives");
    server.send_to(b"answer", from).unwrap();
    client.recv_from(&mut buf).is_ok()
}

async fn next_mapping(events: &mut EventSocket, wait: Duration) -> Option<oe_kernel::Mapping> {
    while let Some(event) = events.next_within(wait).await.unwrap() {
        if let Event::Mapping(m) = event {
            return Some(m);
        }
    }
    None
}

#[test]
fn sa_pair_follows_the_peers_new_port() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("nat::sa_pair_follows_the_peers_new_port");
    }
    let pair = Pair::new();
    let a_old = pair.a.run(|| nat_t(Pair::A4, 4500));
    let _a_new = pair.a.run(|| nat_t(Pair::A4, 4501));
    kernel(&pair.a, |mut x| async move {
        let out = encapsulated(Pair::A4, Pair::B4, SPI_AB, (4500, 4500));
        let inb = encapsulated(Pair::B4, Pair::A4, SPI_BA, (4500, 4500));
        install(&mut x, out, inb).await;
    });
    pair.b.run(|| {
        block_on(async {
            let _b_nat_t = nat_t(Pair::B4, 4500);
            let server = UdpSocket::bind((ip(Pair::B4), 5000)).unwrap();
            server.set_read_timeout(Some(WAIT)).unwrap();
            let mut events = EventSocket::open().unwrap();
            let mut x = Xfrm::open(Ownership::default()).unwrap();
            let out = encapsulated(Pair::B4, Pair::A4, SPI_BA, (4500, 4500));
            let inb = encapsulated(Pair::A4, Pair::B4, SPI_AB, (4500, 4500));
            install(&mut x, out.clone(), inb).await;
            assert!(round_trip(&pair, &server), "before the rebinding");

            // a's NAT rebinds: a now sends from 4501, and its old binding (4500) is gone.
            kernel(&pair.a, |mut x| async move {
                let moved = encapsulated(Pair::A4, Pair::B4, SPI_AB, (4501, 4500));
                x.update_sa(&moved).await.unwrap();
            });
            drop(a_old);
            assert!(
                !round_trip(&pair, &server),
                "the answer reached a dead binding"
            );
            let mapping = next_mapping(&mut events, WAIT).await.expect("a MAPPING");
            assert_eq!(mapping.new, "192.0.2.1:4501".parse().unwrap());
            let sent_before = x.get_sa(out.id()).await.unwrap().oseq;

            x.follow_mapping(&mapping, out.id()).await.unwrap();
            assert!(round_trip(&pair, &server), "after following the mapping");
            let out_now = x.get_sa(out.id()).await.unwrap();
            let in_now = x.get_sa(mapping.sa).await.unwrap();
            assert_eq!(out_now.encap, Some((4500, 4501)));
            assert_eq!(in_now.encap, Some((4501, 4500)));
            // The same SA: its sequence numbers went on.
            assert!(out_now.oseq > sent_before, "{out_now:?}");
            // The inbound SA expects the new port: no MAPPING for it any more.
            assert!(round_trip(&pair, &server));
            let again = next_mapping(&mut events, Duration::from_secs(1)).await;
            assert_eq!(again, None);
        })
        .unwrap()
    });
}
