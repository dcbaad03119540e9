//! A NAT router between a private LAN (10.0.0.0/24) and the test bed's LAN: source NAT with port
//! translation as a home router does it, built from tc's conntrack action (`act_ct`), since the
//! UML kernel has nf_conntrack and nf_nat but neither iptables' nor nftables' nat table. The
//! router can forget its mappings and rebind to new ports ([`NatBox::rebind`]), and its UDP
//! timeout can be shortened ([`NatBox::udp_timeout`]).

use std::cell::Cell;

use crate::netns::Netns;
use crate::scenario::LanBed;

/// The NAT router and its inside bridge.
#[derive(Debug)]
pub struct NatBox {
    pub ns: Netns,
    /// Its interface on the outside LAN.
    pub outside_if: String,
    /// Its outside address (what peers see).
    pub outside: String,
    /// Which port range the current mappings use (changes with each rebinding).
    generation: Cell<u16>,
}

/// The router's address on the private LAN.
pub const INSIDE_GATEWAY: &str = "10.0.0.1";

impl NatBox {
    /// A router on `bed`'s LAN at `outside` (an address of 192.0.2.0/24).
    pub fn start(bed: &LanBed, outside: &str) -> Self {
        let (ns, outside_if) = bed.host("nat", &[&format!("{outside}/24")]);
        ns.sysctl("net.ipv4.ip_forward", "1");
        ns.sh(&format!(
            "ip link add br0 type bridge && ip addr add {INSIDE_GATEWAY}/24 dev br0 && ip link set br0 up \
             && tc qdisc add dev {outside_if} clsact \
             && tc filter add dev {outside_if} ingress protocol ip prio 1 matchall action ct nat pipe"
        ));
        let nat = Self {
            ns,
            outside_if,
            outside: outside.to_owned(),
            generation: Cell::new(0),
        };
        nat.translate();
        nat
    }

    /// Source NAT of everything leaving the outside interface to the outside address, with
    /// ports from this generation's range (20000-29999, then 30000-39999, ...).
    fn translate(&self) {
        let g = self.generation.get();
        let low = 20_000 + 10_000 * (g % 4);
        let out = self.ns.sh(&format!(
            "tc filter del dev {0} egress prio 1 2>/dev/null; \
             tc filter add dev {0} egress protocol ip prio 1 matchall \
             action ct commit nat src addr {1} port {low}-{2}",
            self.outside_if,
            self.outside,
            low + 9_999
        ));
        assert!(
            out.status.success(),
            "tc ct nat: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A host on the private LAN at `addr` (of 10.0.0.0/24), routed through the router.
    pub fn client(&self, label: &str, addr: &str) -> (Netns, String) {
        let host = Netns::new(label);
        let (inside, ours) = Netns::veth(&host, &self.ns);
        self.ns.ip(&["link", "set", &ours, "master", "br0"]);
        host.addr(&inside, &format!("{addr}/24"));
        host.ip(&["route", "add", "default", "via", INSIDE_GATEWAY]);
        (host, inside)
    }

    /// The router forgets every mapping (a conntrack flush, as after a reboot or a full table)
    /// and maps new flows to ports of another range: every client's next packet leaves from a
    /// new outside port.
    pub fn rebind(&self) {
        self.generation.set(self.generation.get() + 1);
        self.translate();
        // IPCTNL_MSG_CT_DELETE with no attributes: flush the conntrack table (what
        // `conntrack -F` sends).
        let out = self.ns.sh(
            "python3 -c \"import socket,struct; s=socket.socket(socket.AF_NETLINK,socket.SOCK_RAW,12); \
             s.send(struct.pack('=IHHII',20,(1<<8)|2,1|4,1,0)+struct.pack('=BBH',2,0,0)); \
             r=s.recv(64); assert struct.unpack('=i',r[16:20])[0]==0, r\"",
        );
        assert!(
            out.status.success(),
            "conntrack flush: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How long the router keeps an idle UDP mapping (both unanswered and answered flows).
    pub fn udp_timeout(&self, secs: u32) {
        for key in [
            "net.netfilter.nf_conntrack_udp_timeout",
            "net.netfilter.nf_conntrack_udp_timeout_stream",
        ] {
            self.ns.sysctl(key, &secs.to_string());
        }
    }
}
