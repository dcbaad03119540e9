//! A model of the kernel's XFRM state, answering the core's requests the way the kernel does:
//! adding what exists is EEXIST, deleting what does not is ENOENT, UPDSA needs the state it
//! completes. It also notes every request that touched a policy the agent does not own, and
//! models the queue of a trap that holds a flow's packets (`xfrm_larval_drop=0`): re-putting the
//! trap (UPDPOLICY) re-checks them at once (`xfrm_policy_requeue`), as the kernel does.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use oe_kernel::{
    Counters, Lifetime, PolicyInfo, PolicyKey, PolicySpec, Reqid, SaId, SaInfo, SaSpec, Spi,
};
use oe_policy::{KernelOp, KernelReply};

#[derive(Default)]
pub struct Kernel {
    pub policies: HashMap<PolicyKey, PolicySpec>,
    /// Installed SAs by (destination, SPI).
    pub sas: HashMap<(IpAddr, u32), SaSpec>,
    /// Larval states: ALLOCSPI reservations and ACQUIRE states, by (destination, SPI).
    pub larval: HashMap<(IpAddr, u32), (IpAddr, Reqid)>,
    /// Policies someone else installed: the agent must never change or remove them.
    pub foreign: HashSet<PolicyKey>,
    /// Requests that touched a foreign policy.
    pub foreign_touched: Vec<String>,
    /// Byte and packet counters per SA, as tests set them.
    pub counters: HashMap<(IpAddr, u32), (u64, u64)>,
    /// Every request, in order.
    pub log: Vec<String>,
    /// The host's addresses (rtnetlink), as `ReadNetwork` answers them.
    pub addresses: Vec<oe_kernel::route::LocalAddress>,
    /// SAs installed in a given mode (tunnel), by (destination, SPI); absent: transport.
    pub modes: HashMap<(IpAddr, u32), oe_kernel::Mode>,
    /// Destinations whose packets wait in a trap's queue.
    pub held: Vec<(PolicyKey, IpAddr)>,
    /// Held packets the kernel let go after a re-check: (destination, "clear" or "esp").
    pub released: Vec<(IpAddr, &'static str)>,
    /// Addresses assigned to us on the loopback link: address -> (the peer its host route
    /// leads to, valid seconds), and how often each was put (added or renewed).
    pub assigned: HashMap<IpAddr, (IpAddr, u32)>,
    pub assigned_puts: usize,
    /// Host routes to addresses we assigned clients: client -> the outer address it is routed like.
    pub client_routes: HashMap<IpAddr, IpAddr>,
    next_spi: u32,
}

pub fn op_name(op: &KernelOp) -> &'static str {
    match op {
        KernelOp::AddPolicy(_) => "add-policy",
        KernelOp::UpdatePolicy(_) => "update-policy",
        KernelOp::DeletePolicy(_) => "delete-policy",
        KernelOp::AddSa(_) => "add-sa",
        KernelOp::UpdateSa(_) => "update-sa",
        KernelOp::AddSaIn(..) => "add-sa-in",
        KernelOp::UpdateSaIn(..) => "update-sa-in",
        KernelOp::FollowMapping { .. } => "follow-mapping",
        KernelOp::DeleteSa(_) => "delete-sa",
        KernelOp::AllocSpi { .. } => "alloc-spi",
        KernelOp::DumpSas => "dump-sas",
        KernelOp::RefreshPolicies(_) => "refresh",
        KernelOp::ListOwned => "list-owned",
        KernelOp::FlushOwned => "flush",
        KernelOp::ReadNetwork => "read-network",
        KernelOp::AddAssigned { .. } => "add-assigned",
        KernelOp::RemoveAssigned { .. } => "remove-assigned",
        KernelOp::AddClientRoute { .. } => "add-client-route",
        KernelOp::RemoveClientRoute { .. } => "remove-client-route",
        _ => "other",
    }
}

impl Kernel {
    pub fn execute(&mut self, op: &KernelOp) -> Result<KernelReply, String> {
        self.log.push(op_name(op).into());
        match op {
            KernelOp::AddPolicy(spec) => {
                if self.policies.contains_key(&spec.key()) || self.foreign.contains(&spec.key()) {
                    return Err("File exists (EEXIST)".into());
                }
                self.policies.insert(spec.key(), *spec);
            }
            KernelOp::UpdatePolicy(spec) => {
                if self.foreign.contains(&spec.key()) {
                    self.foreign_touched
                        .push(format!("update {:?}", spec.selector));
                }
                self.policies.insert(spec.key(), *spec);
                self.recheck_held(spec.key());
            }
            KernelOp::DeletePolicy(key) => {
                if self.foreign.contains(key) {
                    self.foreign_touched.push("delete".into());
                }
                self.policies.remove(key).ok_or("No such file (ENOENT)")?;
            }
            KernelOp::AddAssigned {
                addr,
                peer,
                valid_secs,
            } => {
                self.assigned_puts += 1;
                self.assigned.insert(*addr, (*peer, *valid_secs));
            }
            KernelOp::RemoveAssigned { addr, .. } => {
                self.assigned.remove(addr);
            }
            KernelOp::AddClientRoute { client, via, .. } => {
                self.client_routes.insert(*client, *via);
            }
            KernelOp::RemoveClientRoute { client } => {
                self.client_routes.remove(client);
            }
            KernelOp::AllocSpi {
                local,
                remote,
                reqid,
            } => {
                self.next_spi += 1;
                let spi = 0xc000_0000 + self.next_spi;
                self.larval.insert((*local, spi), (*remote, *reqid));
                return Ok(KernelReply::Spi(spi));
            }
            KernelOp::UpdateSaIn(mode, spec) => {
                self.modes.insert((spec.dst, spec.spi.0), *mode);
                return self.execute(&KernelOp::UpdateSa(spec.clone()));
            }
            KernelOp::AddSaIn(mode, spec) => {
                self.modes.insert((spec.dst, spec.spi.0), *mode);
                return self.execute(&KernelOp::AddSa(spec.clone()));
            }
            KernelOp::FollowMapping { mapping, outbound } => {
                let inbound = (mapping.sa.dst, mapping.sa.spi.0);
                let out = (outbound.dst, outbound.spi.0);
                if !self.sas.contains_key(&out) {
                    return Err("No such process (ESRCH)".into());
                }
                let i = self
                    .sas
                    .get_mut(&inbound)
                    .ok_or("No such process (ESRCH)")?;
                let e = i.encap.as_mut().ok_or("not encapsulated")?;
                e.src_port = mapping.new.port();
                let o = self.sas.get_mut(&out).and_then(|s| s.encap.as_mut());
                o.ok_or("not encapsulated")?.dst_port = mapping.new.port();
            }
            KernelOp::UpdateSa(spec) => {
                let id = (spec.dst, spec.spi.0);
                if self.larval.remove(&id).is_none() && !self.sas.contains_key(&id) {
                    return Err("No such process (ESRCH)".into());
                }
                self.sas.insert(id, spec.clone());
            }
            KernelOp::AddSa(spec) => {
                let id = (spec.dst, spec.spi.0);
                if self.sas.contains_key(&id) {
                    return Err("File exists (EEXIST)".into());
                }
                self.sas.insert(id, spec.clone());
            }
            KernelOp::DeleteSa(id) => {
                let k = (id.dst, id.spi.0);
                if self.sas.remove(&k).is_none() && self.larval.remove(&k).is_none() {
                    return Err("No such process (ESRCH)".into());
                }
            }
            KernelOp::RefreshPolicies(wanted) => {
                let mut foreign = Vec::new();
                for spec in wanted {
                    if self.foreign.contains(&spec.key()) {
                        foreign.push(spec.key());
                    } else {
                        self.policies.insert(spec.key(), *spec);
                    }
                }
                return Ok(KernelReply::Refreshed {
                    foreign,
                    failed: Vec::new(),
                });
            }
            KernelOp::DumpSas => return Ok(KernelReply::Sas(self.sa_infos())),
            KernelOp::ListOwned => {
                return Ok(KernelReply::Owned {
                    policies: self.policies.values().map(info).collect(),
                    sas: self.sa_infos(),
                })
            }
            KernelOp::FlushOwned => {
                self.policies.clear();
                self.sas.clear();
                self.larval.clear();
            }
            KernelOp::ReadNetwork => {
                return Ok(KernelReply::Network {
                    addresses: self.addresses.clone(),
                    links: Vec::new(),
                    routes: Vec::new(),
                })
            }
            _ => return Err("unsupported".into()),
        }
        Ok(KernelReply::Done)
    }

    /// A packet to `dst` waits in the queue of the trap `trap` (the ACQUIRE's packet).
    pub fn hold(&mut self, trap: PolicyKey, dst: IpAddr) {
        self.held.push((trap, dst));
    }

    /// The trap was re-put: each held packet is looked up again and leaves if the policy that
    /// now wins for its destination passes it, or protects it with an SA in place.
    fn recheck_held(&mut self, trap: PolicyKey) {
        let (now, later): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|(t, _)| *t == trap);
        self.held = later;
        for (t, dst) in now {
            match self.verdict_for(dst) {
                Some(how) => self.released.push((dst, how)),
                None => self.held.push((t, dst)),
            }
        }
    }

    /// What the winning outbound policy (the lowest priority value) does with a packet to `dst`.
    fn verdict_for(&self, dst: IpAddr) -> Option<&'static str> {
        let ownership = oe_kernel::Ownership::default();
        let winner = self
            .policies
            .values()
            .filter(|p| p.dir == oe_kernel::Direction::Out && p.selector.dst().contains(dst))
            .min_by_key(|p| p.priority(&ownership))?;
        match winner.action {
            oe_kernel::PolicyAction::Pass => Some("clear"),
            oe_kernel::PolicyAction::Protect(reqid) => self
                .sas
                .values()
                .any(|sa| sa.dst == dst && sa.reqid == reqid)
                .then_some("esp"),
            _ => None,
        }
    }

    fn sa_infos(&self) -> Vec<SaInfo> {
        let full = self.sas.iter().map(|(&(dst, spi), s)| {
            let (bytes, packets) = self.counters.get(&(dst, spi)).copied().unwrap_or_default();
            sa_info(dst, spi, s.src, s.reqid, false, bytes, packets)
        });
        let larval = self
            .larval
            .iter()
            .map(|(&(dst, spi), &(src, reqid))| sa_info(dst, spi, src, reqid, true, 0, 0));
        full.chain(larval).collect()
    }

    /// The SAs installed towards or from `addr`.
    pub fn sas_with(&self, addr: IpAddr) -> Vec<&SaSpec> {
        self.sas
            .values()
            .filter(|s| s.src == addr || s.dst == addr)
            .collect()
    }

    /// The policies whose selector's destination or source is `addr`.
    pub fn host_policies(&self, addr: IpAddr) -> Vec<&PolicySpec> {
        self.policies
            .values()
            .filter(|p| {
                let s = p.selector;
                (s.dst().is_host() && s.dst().addr() == addr)
                    || (s.src().is_host() && s.src().addr() == addr)
            })
            .collect()
    }
}

fn sa_info(
    dst: IpAddr,
    spi: u32,
    src: IpAddr,
    reqid: Reqid,
    larval: bool,
    bytes: u64,
    packets: u64,
) -> SaInfo {
    // A larval state with SPI 0 is an ACQUIRE's: it carries the flow (from this host to `dst`).
    let acquired = (larval && spi == 0).then_some(oe_kernel::Flow {
        src,
        dst,
        proto: 17,
        src_port: 40000,
        dst_port: 53,
    });
    SaInfo {
        id: SaId::esp(dst, Spi(spi)),
        src,
        reqid,
        mode: 0,
        selector: oe_kernel::TrafficSelector::hosts(src, dst).ok(),
        lifetime: Lifetime::default(),
        current: Counters {
            bytes,
            packets,
            add_time: 0,
            use_time: 0,
        },
        stats: oe_kernel::sa::SaStats::default(),
        last_used: None,
        algorithms: Vec::new(),
        encap: None,
        replay_window: 0,
        esn: false,
        oseq: 0,
        larval,
        seq: 9,
        acquired,
    }
}

fn info(spec: &PolicySpec) -> PolicyInfo {
    PolicyInfo {
        key: spec.key(),
        index: 0,
        priority: 0,
        block: false,
        templates: Vec::new(),
        expires: spec.expires,
        add_time: 0,
        use_time: 0,
        has_mark_or_context: false,
        main_type: true,
    }
}
