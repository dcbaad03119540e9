//! Captures XFRM netlink traffic for the unit tests in `tests/data/`.
//!
//! Run inside a throwaway network namespace as root (see `tests/data/README.md`):
//! `capture host OUTDIR` on a kernel without ESP (policies, ACQUIRE, ALLOCSPI, larval
//! EXPIRE, POLEXPIRE, refusals), `capture esp OUTDIR` on one with ESP (SAs of each
//! algorithm, GETSA, soft and hard EXPIRE). Every request's bytes (`*.req`) and every
//! datagram the kernel answered with (`*.reply.N`) or multicast (`*.event`) is saved
//! raw. The namespace must have `va` (192.0.2.1/24, 2001:db8::1/64) up.

use std::error::Error as StdError;
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use netlink_sys::{protocols::NETLINK_XFRM, Socket, SocketAddr};
use oe_kernel::sa::{Lifetime, Limits};
use oe_kernel::{
    AlgorithmKind, Direction, Ownership, PolicySpec, Prefix, Replay, Request, SaId, SaSpec, Shunt,
    Spi, Step, TrafficSelector,
};

type Result<T> = std::result::Result<T, Box<dyn StdError>>;

struct Recorder {
    dir: PathBuf,
    socket: Socket,
    events: Socket,
    seq: u32,
}

impl Recorder {
    fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut socket = Socket::new(NETLINK_XFRM)?;
        socket.bind_auto()?;
        socket.set_ext_ack(true)?;
        socket.set_cap_ack(true)?;
        let mut events = Socket::new(NETLINK_XFRM)?;
        events.bind_auto()?;
        for group in [1, 2, 8] {
            events.add_membership(group)?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            socket,
            events,
            seq: 100,
        })
    }

    fn save(&self, name: &str, bytes: &[u8]) -> Result<()> {
        std::fs::write(self.dir.join(name), bytes)?;
        println!("saved {name} ({} bytes)", bytes.len());
        Ok(())
    }

    /// Sends `request`, saves its bytes and every reply datagram; the outcome is printed.
    fn run<T: std::fmt::Debug>(&mut self, name: &str, request: Request<T>) -> Result<()> {
        self.fetch(name, request).map(drop)
    }

    /// Like [`Recorder::run`], returning the outcome.
    fn fetch<T: std::fmt::Debug>(
        &mut self,
        name: &str,
        request: Request<T>,
    ) -> Result<std::result::Result<T, oe_kernel::Error>> {
        self.seq += 1;
        let (bytes, mut exchange) = request.start(self.seq);
        self.save(&format!("{name}.req"), &bytes)?;
        self.socket.send_to(&bytes, &SocketAddr::new(0, 0), 0)?;
        for n in 0.. {
            let mut buf = Vec::with_capacity(65536);
            let len = self.socket.recv(&mut buf, 0)?;
            self.save(
                &format!("{name}.reply.{n}"),
                buf.get(..len).unwrap_or_default(),
            )?;
            if let Step::Done(result) = exchange.on_datagram(&buf) {
                println!("{name}: {result:?}");
                return Ok(result);
            }
        }
        Err("unreachable".into())
    }

    /// Saves the next multicast datagram as `name.event` (gives up after 10 s).
    fn event(&mut self, name: &str) -> Result<()> {
        let mut buf = Vec::with_capacity(65536);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let len = loop {
            match self.events.recv(&mut buf, libc::MSG_DONTWAIT) {
                Ok(len) => break len,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        return Err(format!("{name}: no event within 10 s").into());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let datagram = buf.get(..len).unwrap_or_default();
        println!("{name}: {:?}", oe_kernel::wire::parse_events(datagram));
        self.save(&format!("{name}.event"), datagram)
    }
}

fn ip(s: &str) -> Result<IpAddr> {
    Ok(s.parse()?)
}

fn sysctl(name: &str, value: &str) -> Result<()> {
    std::fs::write(format!("/proc/sys/{}", name.replace('.', "/")), value)?;
    Ok(())
}

fn host(r: &mut Recorder) -> Result<()> {
    let o = Ownership::default();
    let reqid = o.reqid(1).ok_or("reqid")?;
    sysctl("net.core.xfrm_acq_expires", "2")?;
    let trap4 = PolicySpec::trap(
        TrafficSelector::to(Prefix::new(ip("192.0.2.0")?, 24)?),
        reqid,
    );
    let trap6 = PolicySpec::trap(
        TrafficSelector::to(Prefix::new(ip("2001:db8::")?, 64)?),
        reqid,
    );
    r.run("newpolicy_trap4", Request::add_policy(&trap4, &o)?)?;
    r.run("newpolicy_trap6", Request::add_policy(&trap6, &o)?)?;
    r.run("newpolicy_exists", Request::add_policy(&trap4, &o)?)?;
    let shunt_sel =
        TrafficSelector::to(Prefix::host(ip("192.0.2.99")?)).with_proto(6, None, Some(22))?;
    let shunt = PolicySpec::host_shunt(shunt_sel, Direction::Out, Shunt::Block, Some(1));
    r.run("newpolicy_shunt", Request::add_policy(&shunt, &o)?)?;
    r.run("getpolicy_dump", Request::dump_policies())?;
    let read = r.fetch("getpolicy_trap4", Request::get_policy(&trap4.key()))??;
    let owned_trap4 = o.check_policy(read)?;

    UdpSocket::bind("192.0.2.1:40000")?.send_to(b"trigger", "192.0.2.77:5000")?;
    r.event("acquire4")?;
    UdpSocket::bind("[2001:db8::1]:40001")?.send_to(b"trigger", "[2001:db8::77]:5001")?;
    r.event("acquire6")?;

    r.run(
        "allocspi4",
        Request::alloc_spi(ip("192.0.2.1")?, ip("192.0.2.2")?, reqid, &o)?,
    )?;
    let larval = r.fetch("getsa_dump_larval", Request::dump_sas())??;
    let esp = SaSpec {
        src: ip("192.0.2.1")?,
        dst: ip("192.0.2.2")?,
        spi: Spi(0x0102_0304),
        reqid,
        algorithm: AlgorithmKind::AesGcm128.filler(0x11),
        lifetime: Lifetime::default(),
        replay: Replay::default(),
        encap: None,
        selector: None,
        acquire_seq: None,
    };
    r.run("newsa_gcm_refused", Request::add_sa(&esp, &o)?)?;
    let cbc = SaSpec {
        algorithm: AlgorithmKind::AesCbcHmacSha256.filler(0x22),
        ..esp.clone()
    };
    r.run("newsa_cbc_refused", Request::add_sa(&cbc, &o)?)?;
    // The shunt expires after 1 s (POLEXPIRE), the larval states after 2 s (EXPIRE).
    for n in 0..4 {
        r.event(&format!("expiry{n}"))?;
    }
    r.run("delpolicy_trap4", Request::delete_policy(&owned_trap4))?;
    r.run("delpolicy_missing", Request::delete_policy(&owned_trap4))?;
    // A larval SA of ours moved to an id nobody has: what DELSA of a vanished SA sees.
    let mut vanished = larval.into_iter().next().ok_or("no larval SA")?;
    vanished.id = SaId::esp(ip("192.0.2.2")?, Spi(0x0102_0304));
    r.run("delsa_missing", Request::delete_sa(&o.check_sa(vanished)?))?;
    Ok(())
}

fn esp(r: &mut Recorder) -> Result<()> {
    let o = Ownership::default();
    let reqid = o.reqid(2).ok_or("reqid")?;
    for (n, kind) in AlgorithmKind::ALL.into_iter().enumerate() {
        let spi = Spi(0x0a00_0001 + u32::try_from(n)?);
        let spec = SaSpec {
            src: ip("192.0.2.1")?,
            dst: ip("192.0.2.2")?,
            spi,
            reqid,
            algorithm: kind.filler(0x33),
            lifetime: Lifetime {
                soft: Limits {
                    add_seconds: Some(1),
                    ..Limits::default()
                },
                hard: Limits {
                    add_seconds: Some(3),
                    bytes: Some(1 << 20),
                    ..Limits::default()
                },
            },
            replay: Replay {
                window: 64,
                esn: n % 2 == 1,
            },
            encap: None,
            selector: None,
            acquire_seq: None,
        };
        r.run(&format!("newsa_{kind:?}"), Request::add_sa(&spec, &o)?)?;
        r.run(&format!("getsa_{kind:?}"), Request::get_sa(spec.id()))?;
    }
    let mut encap = SaSpec {
        src: ip("2001:db8::2")?,
        dst: ip("2001:db8::1")?,
        spi: Spi(0x0b00_0001),
        reqid,
        algorithm: AlgorithmKind::ChaCha20Poly1305.filler(0x44),
        lifetime: Lifetime::default(),
        replay: Replay::default(),
        encap: None,
        selector: None,
        acquire_seq: None,
    };
    encap.encap = Some(oe_kernel::UdpEncap {
        src_port: 4500,
        dst_port: 4501,
        mapping_threshold: None,
    });
    r.run("newsa_encap6", Request::add_sa(&encap, &o)?)?;
    r.run("getsa_dump", Request::dump_sas())?;
    for n in 0..8 {
        r.event(&format!("sa_expire{n}"))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(dir)) = (args.get(1), args.get(2)) else {
        return Err("usage: capture host|esp OUTDIR".into());
    };
    let mut r = Recorder::new(Path::new(dir))?;
    std::thread::sleep(Duration::from_millis(10));
    match mode.as_str() {
        "host" => host(&mut r),
        "esp" => esp(&mut r),
        _ => Err("mode must be host or esp".into()),
    }
}
